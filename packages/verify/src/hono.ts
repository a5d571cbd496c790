/**
 * A Hono middleware. Hono is an optional peer dependency: this entry point
 * (`@gatehouse/verify/hono`) only imports its types.
 *
 *     const app = new Hono<GatehouseEnv>();
 *     app.use("/api/*", gatehouse(createVerifier({ issuer, audience })));
 *     app.get("/api/me", (c) => c.json({ id: c.get("gatehouse").sub }));
 */
import type { MiddlewareHandler } from "hono";
import type { GatehouseClaims } from "./claims.js";
import { GatehouseVerifyError, errorResponse } from "./errors.js";
import type { TokenFromRequestOptions } from "./request.js";
import type { Verifier } from "./verifier.js";
import { authenticate } from "./workers.js";

/** The Hono environment the middleware fills: `c.get("gatehouse")` is the verified claims. */
export type GatehouseEnv = { Variables: { gatehouse: GatehouseClaims } };

export interface GatehouseMiddlewareOptions extends TokenFromRequestOptions {
  /** Let requests without any token through (with no `gatehouse` variable); a bad token is still refused. */
  optional?: boolean;
  /** The answer to a refused request (default: 401 JSON, 503 when the JWKS is unavailable). */
  onError?: (error: GatehouseVerifyError) => Response | Promise<Response>;
}

export function gatehouse(verifier: Verifier, options: GatehouseMiddlewareOptions = {}): MiddlewareHandler<GatehouseEnv> {
  return async (c, next) => {
    try {
      c.set("gatehouse", await authenticate(verifier, c.req.raw, options));
    } catch (error) {
      if (!(error instanceof GatehouseVerifyError)) throw error;
      if (!(options.optional && error.code === "missing_token")) {
        return options.onError ? options.onError(error) : errorResponse(error);
      }
    }
    await next();
  };
}
