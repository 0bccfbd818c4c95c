// MSAL asks the authority for its OpenID configuration before its first token request: a round trip before the
// one that matters. For the authority of a known cloud that document is static: its endpoints are the authority's
// own origin and tenant (MSAL carries the same table for login.microsoftonline.com and .us, but not for
// login.chinacloudapi.cn, nor for an authority with a port). This answers MSAL's request with it, from here.
import { createHttpHeaders, type PipelineRequest, type PipelineResponse } from '@azure/core-rest-pipeline';
import { CLOUDS } from '../clouds.js';

const KNOWN_AUTHORITY_HOSTS: ReadonlySet<string> = new Set(Object.values(CLOUDS).map((cloud) => new URL(cloud.authorityHost).hostname));
const PATH = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/;

/**
 * The answer to `request` when it is the GET of the OpenID configuration of `authorityHost` for `tenantId` and
 * that authority is a known cloud's; undefined otherwise (an unknown authority is asked, as MSAL would).
 */
export function knownAuthorityMetadata(request: PipelineRequest, authorityHost: string, tenantId: string): PipelineResponse | undefined {
  if (request.method !== 'GET') return undefined;
  let url: URL;
  let authority: URL;
  try {
    url = new URL(request.url);
    authority = new URL(authorityHost);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' || url.origin !== authority.origin || url.search !== '' || !KNOWN_AUTHORITY_HOSTS.has(url.hostname)) return undefined;
  const tenant = PATH.exec(url.pathname)?.[1];
  if (tenant === undefined || tenant.toLowerCase() !== tenantId.toLowerCase()) return undefined;
  const base = `${url.origin}/${tenant}`;
  const document = {
    token_endpoint: `${base}/oauth2/v2.0/token`,
    issuer: `${base}/v2.0`,
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    end_session_endpoint: `${base}/oauth2/v2.0/logout`,
    jwks_uri: `${base}/discovery/v2.0/keys`,
  };
  return {
    request,
    status: 200,
    headers: createHttpHeaders({ 'content-type': 'application/json; charset=utf-8' }),
    bodyAsText: JSON.stringify(document),
  };
}
