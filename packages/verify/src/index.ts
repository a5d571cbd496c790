/**
 * Verify Gatehouse access tokens in your app. Only Web APIs (fetch, WebCrypto, Request,
 * Response): runs on Cloudflare Workers, Node >= 20, Deno and Bun. See README.md.
 */
export type { GatehouseClaims } from "./claims.js";
export { GatehouseVerifyError, errorResponse, type VerifyErrorCode } from "./errors.js";
export type { FetchLike } from "./jwks.js";
export { accessCookieName, tokenFromRequest, type TokenFromRequestOptions, type TokenSource } from "./request.js";
export { ACCESS_TOKEN_TYPE, MAX_TOKEN_BYTES, createVerifier, type Verifier, type VerifierOptions } from "./verifier.js";
export { authenticate, withGatehouse, type AuthenticatedHandler, type WithGatehouseOptions } from "./workers.js";
