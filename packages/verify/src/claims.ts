import type { JWTPayload } from "jose";

/**
 * The claims of a Gatehouse access token. `sub` is the Gatehouse user id; `sid` the session
 * id (first-party tokens). Tokens Gatehouse issues to an app as its OpenID Provider carry
 * `client_id` and `scope` instead of a session. Never trust `email` unless `email_verified`.
 */
export interface GatehouseClaims extends JWTPayload {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  sid?: string;
  email?: string | null;
  email_verified?: boolean;
  name?: string | null;
  roles?: string[];
  client_id?: string;
  scope?: string;
}
