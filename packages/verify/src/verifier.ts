import { decodeProtectedHeader, jwtVerify, type ProtectedHeaderParameters } from "jose";
import type { GatehouseClaims } from "./claims.js";
import { GatehouseVerifyError, type VerifyErrorCode } from "./errors.js";
import { KeySet, type FetchLike } from "./jwks.js";

/** The `typ` of an access token (RFC 9068): nothing else is accepted. */
export const ACCESS_TOKEN_TYPE = "at+jwt";
/** Tokens larger than this are refused before any parsing. */
export const MAX_TOKEN_BYTES = 16 * 1024;
const ASYMMETRIC = new Set(["EdDSA", "Ed25519", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]);
/** Header parameters that would let a token bring or point at its own key. */
const KEY_CARRYING_HEADERS = ["jwk", "jku", "x5u", "x5c"] as const;

export interface VerifierOptions {
  /** Gatehouse's `PUBLIC_URL`, exactly as in the tokens' `iss` (no trailing slash). */
  issuer: string;
  /**
   * The audience(s) this app accepts: a token passes when its `aud` names at least one.
   * First-party tokens carry `PUBLIC_URL`; tokens Gatehouse issues to an app carry that
   * app's own audience.
   */
  audience: string | readonly string[];
  /** Defaults to `{issuer}/.well-known/jwks.json`. */
  jwksUrl?: string;
  /** Signature algorithms accepted (default `["EdDSA"]`, what Gatehouse signs with). `none` and HMAC are refused. */
  algorithms?: readonly string[];
  /** Clock skew allowed on `exp`, `nbf` and `iat`, in seconds (default 5). It adds to the revocation bound. */
  leewaySeconds?: number;
  /** The least time between two JWKS requests, in seconds (default 60). */
  cooldownSeconds?: number;
  /** How long a fetched JWKS is used before it is fetched again, in seconds (default 300, Gatehouse's `max-age`). */
  cacheMaxAgeSeconds?: number;
  /** Timeout of one JWKS request, in milliseconds (default 5000). */
  timeoutMs?: number;
  /** The fetch used for the JWKS, e.g. a service binding's: `(url, init) => env.GATEHOUSE.fetch(url, init)`. */
  fetch?: FetchLike;
  /** The clock, in milliseconds since the epoch (default `Date.now`); for tests. */
  now?: () => number;
  /** Told about each failed JWKS request (default: `console.warn`). */
  onJwksError?: (error: GatehouseVerifyError) => void;
}

export interface Verifier {
  /**
   * The token's claims when every check passes; otherwise rejects with a
   * {@link GatehouseVerifyError} (`missing_token` for no token at all).
   */
  verify(token: string | null | undefined): Promise<GatehouseClaims>;
  /** How many JWKS requests this verifier has made. */
  readonly jwksFetches: number;
}

function fail(code: VerifyErrorCode, message: string, cause?: unknown): never {
  throw new GatehouseVerifyError(code, message, cause === undefined ? undefined : { cause });
}

function checkedAlgorithms(algorithms: readonly string[]): Set<string> {
  for (const alg of algorithms) {
    if (!ASYMMETRIC.has(alg)) throw new TypeError(`@gatehouse/verify: algorithm ${JSON.stringify(alg)} is not allowed (only asymmetric signatures)`);
  }
  return new Set(algorithms);
}

/** The header, after the checks that need no key: size, shape, `alg`, `typ`, no key-carrying parameters. */
function checkedHeader(token: unknown, allowed: Set<string>): ProtectedHeaderParameters & { alg: string; kid: string } {
  if (typeof token !== "string" || token.length === 0) fail("missing_token", "No token was given.");
  if (token.length > MAX_TOKEN_BYTES) fail("malformed", `The token is over ${MAX_TOKEN_BYTES} bytes.`);
  if (token.split(".").length !== 3) fail("malformed", "The token is not a compact JWS.");
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(token);
  } catch (cause) {
    fail("malformed", "The token's header cannot be decoded.", cause);
  }
  if (typeof header.alg !== "string" || !allowed.has(header.alg)) {
    fail("alg_not_allowed", `Algorithm ${JSON.stringify(header.alg)} is not allowed.`);
  }
  if (header.typ !== ACCESS_TOKEN_TYPE) fail("wrong_type", `The token's typ is ${JSON.stringify(header.typ)}, not "${ACCESS_TOKEN_TYPE}".`);
  for (const name of KEY_CARRYING_HEADERS) {
    if (name in header) fail("malformed", `The token's header carries "${name}".`);
  }
  if (typeof header.kid !== "string") fail("malformed", "The token names no key (kid).");
  return header as ProtectedHeaderParameters & { alg: string; kid: string };
}

/** Maps jose's errors onto ours. */
function refusal(error: unknown): GatehouseVerifyError {
  const e = error as { code?: string; claim?: string; message?: string };
  const message = e?.message ?? String(error);
  switch (e?.code) {
    case "ERR_JWT_EXPIRED":
      return new GatehouseVerifyError("expired", "The token has expired.", { cause: error });
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return new GatehouseVerifyError("bad_signature", "The token's signature does not verify.", { cause: error });
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return new GatehouseVerifyError("alg_not_allowed", message, { cause: error });
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      if (e.claim === "iss") return new GatehouseVerifyError("wrong_issuer", "The token's issuer is not the expected one.", { cause: error });
      if (e.claim === "aud") return new GatehouseVerifyError("wrong_audience", "The token is not meant for this audience.", { cause: error });
      if ((e.claim === "nbf" || e.claim === "iat") && /timestamp check failed/.test(message)) {
        return new GatehouseVerifyError("not_yet_valid", `The token's ${e.claim} is in the future.`, { cause: error });
      }
      return new GatehouseVerifyError("malformed", message, { cause: error });
    default:
      return new GatehouseVerifyError("malformed", message, { cause: error });
  }
}

/**
 * A verifier of Gatehouse access tokens for one issuer and audience. Create it once (per
 * isolate / process) and keep it: it holds the cached JWKS and the imported keys.
 */
export function createVerifier(options: VerifierOptions): Verifier {
  const issuer = options.issuer;
  if (typeof issuer !== "string" || !/^https?:\/\//.test(issuer)) throw new TypeError("@gatehouse/verify: `issuer` must be Gatehouse's PUBLIC_URL");
  const audience = typeof options.audience === "string" ? [options.audience] : [...(options.audience ?? [])];
  if (audience.length === 0 || audience.some((a) => typeof a !== "string" || a === "")) throw new TypeError("@gatehouse/verify: `audience` must be a non-empty string or list of strings");
  const allowed = checkedAlgorithms(options.algorithms ?? ["EdDSA"]);
  const leeway = options.leewaySeconds ?? 5;
  const now = options.now ?? Date.now;
  const keys = new KeySet({
    url: options.jwksUrl ?? `${issuer.replace(/\/+$/, "")}/.well-known/jwks.json`,
    fetch: options.fetch ?? ((url, init) => fetch(url, init)),
    now,
    cooldownMs: (options.cooldownSeconds ?? 60) * 1000,
    maxAgeMs: (options.cacheMaxAgeSeconds ?? 300) * 1000,
    timeoutMs: options.timeoutMs ?? 5000,
    onError: options.onJwksError ?? ((e) => console.warn(`@gatehouse/verify: ${e.message}`)),
  });

  async function verify(token: string | null | undefined): Promise<GatehouseClaims> {
    const header = checkedHeader(token, allowed);
    const jws = token as string; // checkedHeader refused anything else
    const key = await keys.key(header.kid);
    // The key decides its algorithm; the token only gets to agree with it.
    if (key.alg !== header.alg) fail("alg_not_allowed", `The key "${key.kid}" is for ${key.alg}, not ${header.alg}.`);
    let cryptoKey: CryptoKey | Uint8Array;
    try {
      cryptoKey = await key.cryptoKey();
    } catch (cause) {
      fail("jwks_unavailable", `The published key "${key.kid}" cannot be imported.`, cause);
    }
    try {
      const { payload } = await jwtVerify(jws, cryptoKey, {
        algorithms: [key.alg],
        issuer,
        audience,
        clockTolerance: leeway,
        currentDate: new Date(now()),
        requiredClaims: ["iss", "sub", "aud", "exp", "iat"],
      });
      // jose checks `iat` only against a maximum age; a token from the future is refused here.
      if ((payload.iat as number) > now() / 1000 + leeway) fail("not_yet_valid", "The token's iat is in the future.");
      return payload as GatehouseClaims;
    } catch (error) {
      throw error instanceof GatehouseVerifyError ? error : refusal(error);
    }
  }

  return {
    verify,
    get jwksFetches() {
      return keys.fetchCount;
    },
  };
}
