import { importJWK, type JWK } from "jose";
import { GatehouseVerifyError } from "./errors.js";

/** How the key set reaches the network: the global `fetch`, or a service binding's. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** One published key, its algorithm, and its imported form (imported once, on first use). */
export interface PublishedKey {
  readonly kid: string;
  readonly alg: string;
  cryptoKey(): Promise<CryptoKey | Uint8Array>;
}

export interface KeySetOptions {
  url: string;
  fetch: FetchLike;
  /** Milliseconds since the epoch. */
  now: () => number;
  cooldownMs: number;
  maxAgeMs: number;
  timeoutMs: number;
  onError: (error: GatehouseVerifyError) => void;
}

/** The algorithm a key is for: its own `alg`, or the one its type implies. */
function algorithmOf(jwk: JWK): string | undefined {
  if (typeof jwk.alg === "string") return jwk.alg;
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") return "EdDSA";
  if (jwk.kty === "EC" && jwk.crv === "P-256") return "ES256";
  if (jwk.kty === "RSA") return "RS256";
  return undefined;
}

function published(jwk: JWK, previous: PublishedKey | undefined): PublishedKey | undefined {
  const alg = algorithmOf(jwk);
  if (typeof jwk.kid !== "string" || alg === undefined || (jwk.use !== undefined && jwk.use !== "sig")) return undefined;
  const fingerprint = JSON.stringify([jwk.kty, jwk.crv, jwk.x, jwk.y, jwk.n, jwk.e, alg]);
  if (previous && (previous as KeyEntry).fingerprint === fingerprint) return previous;
  let imported: Promise<CryptoKey | Uint8Array> | undefined;
  const entry: KeyEntry = {
    kid: jwk.kid,
    alg,
    fingerprint,
    cryptoKey: () => {
      // A key that fails to import is retried next time rather than cached as a failure.
      imported ??= importJWK(jwk, alg).catch((e: unknown) => {
        imported = undefined;
        throw e;
      });
      return imported;
    },
  };
  return entry;
}

interface KeyEntry extends PublishedKey {
  readonly fingerprint: string;
}

/**
 * The JWKS, cached. It is fetched on first use, again when it is older than `maxAgeMs`, and
 * again when a token names a `kid` it does not hold — but never more than once per
 * `cooldownMs`, whatever the reason, so that tokens with made-up `kid`s cannot make it hammer
 * the endpoint. Concurrent callers share one request. When a refresh fails, the keys already
 * known stay in use (reported through `onError`); with none known the caller gets
 * `jwks_unavailable`.
 */
export class KeySet {
  readonly #options: KeySetOptions;
  #keys = new Map<string, PublishedKey>();
  #fetchedAt: number | undefined;
  #lastAttempt: number | undefined;
  #lastError: GatehouseVerifyError | undefined;
  #inFlight: Promise<void> | undefined;
  /** How many JWKS requests were made (for tests and metrics). */
  fetchCount = 0;

  constructor(options: KeySetOptions) {
    this.#options = options;
  }

  /** The published key called `kid`, refetching the set once if it is unknown or stale. */
  async key(kid: string): Promise<PublishedKey> {
    const now = this.#options.now();
    const stale = this.#fetchedAt === undefined || now - this.#fetchedAt >= this.#options.maxAgeMs;
    if ((stale || !this.#keys.has(kid)) && this.#mayFetch(now)) await this.#refresh();
    const key = this.#keys.get(kid);
    if (key) return key;
    if (this.#fetchedAt === undefined) {
      throw this.#lastError ?? new GatehouseVerifyError("jwks_unavailable", "The JWKS has not been fetched yet.");
    }
    throw new GatehouseVerifyError("unknown_kid", `No published key has the token's kid "${kid}".`);
  }

  #mayFetch(now: number): boolean {
    return this.#inFlight !== undefined || this.#lastAttempt === undefined || now - this.#lastAttempt >= this.#options.cooldownMs;
  }

  #refresh(): Promise<void> {
    this.#inFlight ??= this.#fetch().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #fetch(): Promise<void> {
    const { url, fetch, now, timeoutMs, onError } = this.#options;
    this.#lastAttempt = now();
    this.fetchCount++;
    try {
      const response = await fetch(url, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(timeoutMs) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body: unknown = await response.json();
      const keys = (body as { keys?: unknown })?.keys;
      if (!Array.isArray(keys)) throw new Error('no "keys" array');
      const next = new Map<string, PublishedKey>();
      for (const jwk of keys as JWK[]) {
        // One key of a type this verifier does not know must not reject the whole set.
        const key = jwk && typeof jwk === "object" ? published(jwk, this.#keys.get(String(jwk.kid))) : undefined;
        if (key) next.set(key.kid, key);
      }
      this.#keys = next;
      this.#fetchedAt = this.#lastAttempt;
      this.#lastError = undefined;
    } catch (cause) {
      const error = new GatehouseVerifyError("jwks_unavailable", `Could not fetch the JWKS at ${url}: ${(cause as Error)?.message ?? cause}`, { cause });
      this.#lastError = error;
      onError(error);
    }
  }
}
