import type { GatehouseClaims } from "./claims.js";
import { GatehouseVerifyError, errorResponse } from "./errors.js";
import { tokenFromRequest, type TokenFromRequestOptions } from "./request.js";
import type { Verifier } from "./verifier.js";

/** The signed-in user's claims for a request, or the refusal. */
export async function authenticate(verifier: Verifier, request: Request, options?: TokenFromRequestOptions): Promise<GatehouseClaims> {
  const token = tokenFromRequest(request, options);
  if (token === undefined) throw new GatehouseVerifyError("missing_token", "The request carries no access token.");
  return verifier.verify(token);
}

/** A handler that runs only for requests with a valid access token. */
export type AuthenticatedHandler<Env, Ctx> = (request: Request, env: Env, ctx: Ctx, claims: GatehouseClaims) => Response | Promise<Response>;

export interface WithGatehouseOptions extends TokenFromRequestOptions {
  /** The answer to a refused request (default {@link errorResponse}: 401 JSON, 503 when the JWKS is unavailable). */
  onError?: (error: GatehouseVerifyError, request: Request) => Response | Promise<Response>;
}

/**
 * Wraps a Workers `fetch` handler: it runs only with verified claims; anything else gets
 * the refusal. `verifier` may be a function of `env` (called once, on the first request),
 * for an issuer or a service binding that lives in `env`.
 *
 *     export default { fetch: withGatehouse(env => createVerifier({...}), (req, env, ctx, user) => ...) };
 */
export function withGatehouse<Env = unknown, Ctx = unknown>(
  verifier: Verifier | ((env: Env) => Verifier),
  handler: AuthenticatedHandler<Env, Ctx>,
  options: WithGatehouseOptions = {},
): (request: Request, env: Env, ctx: Ctx) => Promise<Response> {
  let made: Verifier | undefined = typeof verifier === "function" ? undefined : verifier;
  return async (request, env, ctx) => {
    made ??= (verifier as (env: Env) => Verifier)(env);
    let claims: GatehouseClaims;
    try {
      claims = await authenticate(made, request, options);
    } catch (error) {
      if (!(error instanceof GatehouseVerifyError)) throw error;
      return options.onError ? options.onError(error, request) : errorResponse(error);
    }
    return handler(request, env, ctx, claims);
  };
}
