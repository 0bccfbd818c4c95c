// A response body read whole, for both transports of http2-client.ts: bounded in size on the wire and once
// decompressed, checked complete, and decoded as the SDK asked. What the network can make us hold ends here.
import zlib from 'node:zlib';
import { RestError, type HttpHeaders, type PipelineRequest } from '@azure/core-rest-pipeline';

/**
 * The largest answer, on the wire and decompressed. Key Vault's answers are far smaller: a 25 KB secret with 15
 * tags stays under 170 KB even with every character JSON-escaped, and Entra ID's token answers are a few KB. (A
 * page of 25 versions each carrying 15 tags of the longest names and values, about 300 KB, is the one answer
 * Key Vault could send that this refuses.) What a hostile server can make the fetch hold grows with this limit
 * times the reads in flight: measured with 64 at once, huge answers or gzip bombs peak at 93–117 MiB (Node.js
 * 20 and 24, test/fetch-faults-process.ts), under the init container's 128 MiB; at 512 KiB they reached 154 MiB.
 */
export const MAX_RESPONSE_BYTES = 256 * 1024;

/** The answer (or its decompressed form) was larger than the limit. No retry makes it smaller. */
export const RESPONSE_TOO_LARGE = 'ERR_RESPONSE_TOO_LARGE';
/** The transfer ended before the whole body came: fewer bytes than announced, or no end-of-body marker. */
export const RESPONSE_INCOMPLETE = 'ERR_RESPONSE_INCOMPLETE';
/** No complete answer within the per-request time limit. */
export const RESPONSE_TIMEOUT = 'ERR_RESPONSE_TIMEOUT';

/** Collects the chunks of one body and says when it is too large, or shorter than its content-length. */
export class BodyReader {
  private readonly chunks: Buffer[] = [];
  private received = 0;

  constructor(
    private readonly request: PipelineRequest,
    private readonly limit: number,
    private readonly declared: number | undefined,
  ) {}

  /** An error when the content-length already announces more than the limit: nothing of it need be read. */
  announced(): RestError | undefined {
    return this.declared !== undefined && this.declared > this.limit ? tooLarge(this.request, this.limit) : undefined;
  }

  /** Add a chunk; an error when the body grows past the limit or its declared length. */
  add(chunk: Buffer): RestError | undefined {
    this.received += chunk.length;
    if (this.received > this.limit) return tooLarge(this.request, this.limit);
    if (this.declared !== undefined && this.received > this.declared) return incomplete(this.request, 'more bytes than its content-length');
    this.chunks.push(chunk);
    return undefined;
  }

  /** The body once the transport says it ended; an error when it is shorter than announced. */
  finish(): Buffer | RestError {
    if (this.declared !== undefined && this.received < this.declared) {
      return incomplete(this.request, `${this.received} of the ${this.declared} bytes its content-length announced`);
    }
    return Buffer.concat(this.chunks, this.received);
  }
}

/** The content-length of a response, when it is a valid one. */
export function declaredLength(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,15}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

/**
 * The body as text, decompressed when the SDK asked for gzip or deflate (decompressResponsePolicy), as its
 * HTTP/1.1 client does; the decompressed form is held to the same limit.
 */
export function bodyText(body: Buffer, responseHeaders: HttpHeaders, request: PipelineRequest, limit: number): string | RestError {
  const accepted = request.headers.get('accept-encoding') ?? '';
  const encoding = responseHeaders.get('content-encoding')?.trim().toLowerCase();
  const options = { maxOutputLength: limit };
  try {
    if (encoding === 'gzip' && accepted.includes('gzip')) return zlib.gunzipSync(body, options).toString('utf8');
    if (encoding === 'deflate' && accepted.includes('deflate')) return zlib.inflateSync(body, options).toString('utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return tooLarge(request, limit);
    // Corrupt or cut compressed data: the SDK's own client reports this as a parse error too.
    return new RestError(`the ${encoding} response body could not be decompressed`, { code: RestError.PARSE_ERROR, request });
  }
  return body.toString('utf8');
}

export function incomplete(request: PipelineRequest, detail: string): RestError {
  return new RestError(`the response ended before its body was complete: ${detail}`, { code: RESPONSE_INCOMPLETE, request });
}

export function timedOut(request: PipelineRequest, ms: number): RestError {
  return new RestError(`no complete response within ${ms} ms`, { code: RESPONSE_TIMEOUT, request });
}

function tooLarge(request: PipelineRequest, limit: number): RestError {
  return new RestError(`the response body is larger than ${limit} bytes`, { code: RESPONSE_TOO_LARGE, request });
}
