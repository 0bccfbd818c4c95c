// Share one token request among concurrent callers and reuse the token until shortly before it expires.
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';

const REFRESH_MARGIN_MS = 5 * 60 * 1000;

/** Wraps a credential so that N clients asking at once cause one request to Entra ID. */
export class CoalescingCredential implements TokenCredential {
  private readonly inFlight = new Map<string, Promise<AccessToken | null>>();
  private readonly cache = new Map<string, AccessToken>();

  constructor(
    private readonly inner: TokenCredential,
    private readonly now: () => number = Date.now,
  ) {}

  getToken(scopes: string | string[], options: GetTokenOptions = {}): Promise<AccessToken | null> {
    const key = JSON.stringify([[scopes].flat(), options.tenantId ?? '', options.enableCae ?? false, options.claims ?? '']);
    const cached = this.cache.get(key);
    if (cached !== undefined && cached.expiresOnTimestamp - REFRESH_MARGIN_MS > this.now()) {
      return Promise.resolve(cached);
    }
    const pending = this.inFlight.get(key);
    if (pending !== undefined) return pending;
    const request = this.inner
      .getToken(scopes, options)
      .then((token) => {
        if (token !== null) this.cache.set(key, token);
        return token;
      })
      .finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, request);
    return request;
  }
}
