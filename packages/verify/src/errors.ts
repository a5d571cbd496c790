/**
 * Why a token was refused. Every refusal carries exactly one of these codes, so an app can
 * log it, count it, or answer differently (503 for `jwks_unavailable`, 401 for the rest).
 */
export type VerifyErrorCode =
  /** The request carried no token (none of the sources that were asked for). */
  | "missing_token"
  /** Not a compact JWS, undecodable, too large, a forbidden header, or a required claim missing. */
  | "malformed"
  /** The header's `alg` is not allowed (`none`, `HS256`, …) or is not the key's own algorithm. */
  | "alg_not_allowed"
  /** The header's `typ` is not `at+jwt`: some other kind of token (an ID token, say). */
  | "wrong_type"
  /** No published key has the token's `kid`, even after the one refetch the cooldown allows. */
  | "unknown_kid"
  /** The signature does not verify with the named key. */
  | "bad_signature"
  /** `exp` has passed (beyond the configured leeway). */
  | "expired"
  /** `nbf` or `iat` is in the future (beyond the configured leeway). */
  | "not_yet_valid"
  /** `iss` is not exactly the configured issuer. */
  | "wrong_issuer"
  /** `aud` names none of the configured audiences. */
  | "wrong_audience"
  /** The JWKS could not be fetched or read, and no keys were known from before. */
  | "jwks_unavailable";

/** A refused token (or a JWKS that cannot be had), with a machine-readable `code`. */
export class GatehouseVerifyError extends Error {
  override readonly name = "GatehouseVerifyError";
  readonly code: VerifyErrorCode;

  constructor(code: VerifyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * The HTTP answer for a refusal: 503 when the keys could not be fetched (the token may be
 * fine), otherwise 401 with an RFC 6750 `WWW-Authenticate` challenge. The body is
 * `{"error": code, "message": sentence}`.
 */
export function errorResponse(error: GatehouseVerifyError): Response {
  const status = error.code === "jwks_unavailable" ? 503 : 401;
  const headers = new Headers({ "content-type": "application/json", "cache-control": "no-store" });
  if (status === 401) {
    headers.set(
      "www-authenticate",
      error.code === "missing_token" ? "Bearer" : `Bearer error="invalid_token", error_description="${error.code}"`,
    );
  }
  return new Response(JSON.stringify({ error: error.code, message: error.message }), { status, headers });
}
