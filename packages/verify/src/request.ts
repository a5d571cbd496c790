import { GatehouseVerifyError } from "./errors.js";

/** Where a token may come from. */
export type TokenSource = "authorization" | "header" | "cookie";

export interface TokenFromRequestOptions {
  /** Which places to look, in this order (default all: `Authorization: Bearer`, `X-Gatehouse-Jwt`, the access cookie). */
  sources?: readonly TokenSource[];
  /** The cookie's base name (default `gh_access`). */
  cookieName?: string;
}

/** The access cookie's name on the wire: `__Host-` prefixed on https, as Gatehouse sets it. */
export function accessCookieName(url: string, base = "gh_access"): string {
  return new URL(url).protocol === "https:" ? `__Host-${base}` : base;
}

function bearer(request: Request): string | undefined {
  const value = request.headers.get("authorization");
  const match = value?.match(/^Bearer +([^\s,]+) *$/i);
  return match?.[1];
}

function cookie(request: Request, name: string): string | undefined {
  const header = request.headers.get("cookie");
  if (!header) return undefined;
  const values = header
    .split(";")
    .map((pair) => pair.trim())
    .filter((pair) => pair.slice(0, pair.indexOf("=")) === name)
    .map((pair) => pair.slice(pair.indexOf("=") + 1).replace(/^"|"$/g, ""));
  // Two cookies of one name: a sibling subdomain may have tossed one in. Trust neither.
  if (values.length > 1) throw new GatehouseVerifyError("malformed", `The request carries ${values.length} "${name}" cookies.`);
  return values[0] || undefined;
}

/**
 * The access token a request carries: `Authorization: Bearer` (from `POST /auth/token`),
 * `X-Gatehouse-Jwt` (Gatehouse's proxy mode), or the access cookie (`__Host-gh_access` on
 * https, `gh_access` on plain-http localhost), first found wins. `undefined` when there is
 * none; throws `malformed` for an ambiguous cookie. The token still has to be verified.
 */
export function tokenFromRequest(request: Request, options: TokenFromRequestOptions = {}): string | undefined {
  for (const source of options.sources ?? ["authorization", "header", "cookie"]) {
    const token =
      source === "authorization"
        ? bearer(request)
        : source === "header"
          ? request.headers.get("x-gatehouse-jwt")?.trim() || undefined
          : cookie(request, accessCookieName(request.url, options.cookieName));
    if (token) return token;
  }
  return undefined;
}
