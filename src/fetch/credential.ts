// The fetch's workload identity: @azure/identity's ClientAssertionCredential with the projected token as the
// assertion, read by token-file.ts on every token request, over the fetch's own bounded HTTP client. MSAL turns
// a failure of its network module into a bare "network_error" and an unreadable token file into a message, so
// the cause is kept here: the summary can then say what happened, and never quote what a server sent.
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { RestError, type HttpClient, type PipelineRequest, type PipelineResponse } from '@azure/core-rest-pipeline';
import { knownAuthorityMetadata } from './authority-metadata.js';
import type { FetchJob } from './job.js';
import { decodeTokenClaims, readTokenFile, TokenFileError, type TokenClaims } from './token-file.js';

/** A token request failed below Entra ID's answer (the network, or an answer that was no answer): `cause` says how. */
export class TokenRequestError extends Error {
  constructor(override readonly cause: unknown) {
    super('the token request to Entra ID failed');
    this.name = 'TokenRequestError';
  }
}

export interface WorkloadCredential extends TokenCredential {
  /** The claims (iss, sub, aud) of the token last read from the file, to explain a refused exchange. */
  claims(): TokenClaims | undefined;
}

/** The credential for `job`, its requests sent through `httpClient`. */
export async function createWorkloadCredential(job: FetchJob, httpClient: HttpClient): Promise<WorkloadCredential> {
  const { ClientAssertionCredential } = await import('./identity.js');
  let claims: TokenClaims | undefined;
  // Why the current token request failed, when the failure was ours to see and not Entra ID's answer.
  let cause: Error | undefined;

  const readAssertion = async (): Promise<string> => {
    try {
      const token = await readTokenFile(job.tokenFile);
      claims = decodeTokenClaims(token);
      return token;
    } catch (error) {
      cause = error as Error;
      throw error;
    }
  };
  const recording: HttpClient = {
    async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
      const known = knownAuthorityMetadata(request, job.authorityHost, job.tenantId);
      if (known !== undefined) return known;
      try {
        const response = await httpClient.sendRequest(request);
        checkJson(response);
        cause = undefined;
        return response;
      } catch (error) {
        cause = error as Error;
        throw error;
      }
    },
  };
  const credential = new ClientAssertionCredential(job.tenantId, job.clientId, readAssertion, {
    authorityHost: job.authorityHost,
    // The authority is trusted configuration: no discovery round trip, and it works in sovereign clouds.
    disableInstanceDiscovery: true,
    httpClient: recording,
    // The identity pipeline keeps retrying 5xx and lost connections itself: MSAL refuses to send a token
    // request for 60 s after it sees a 5xx or a Retry-After, so the retries must happen below it.
  });

  return {
    claims: () => claims,
    async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
      cause = undefined;
      try {
        return await credential.getToken(scopes, options);
      } catch (error) {
        // Set by readAssertion or the HTTP client while getToken ran (control flow cannot see that).
        const known = cause as Error | undefined;
        if (known instanceof TokenFileError) throw known;
        if (known !== undefined) throw new TokenRequestError(known);
        throw error;
      }
    },
  };
}

// Entra ID answers in JSON, errors included; the identity client would quote anything else in its error.
function checkJson(response: PipelineResponse): void {
  const text = response.bodyAsText;
  if (text === undefined || text === null || text === '') return;
  try {
    JSON.parse(text);
  } catch {
    throw new RestError(`the answer (status ${response.status}) is not valid JSON`, {
      code: RestError.PARSE_ERROR,
      request: response.request,
      statusCode: response.status,
    });
  }
}
