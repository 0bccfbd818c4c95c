// The Azure SDK clients' transport for the fetch role: every request to an origin goes over one
// HTTP/2 connection when the server offers h2 by ALPN, and through the SDK's own HTTP/1.1 client
// otherwise. Forty parallel reads over HTTP/1.1 open forty TLS connections, and on a small node
// setting them up costs more CPU than everything else the fetch does per object; over HTTP/2 they
// share one handshake. Requests this client does not handle itself (a proxy, a custom agent or TLS
// settings, streamed bodies, progress callbacks) go to the SDK's client unchanged.
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Agent } from 'node:https';
import { isIP } from 'node:net';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { AbortError } from '@azure/abort-controller';
import {
  createDefaultHttpClient,
  createHttpHeaders,
  RestError,
  type HttpClient,
  type HttpHeaders,
  type PipelineRequest,
  type PipelineResponse,
} from '@azure/core-rest-pipeline';

export interface Http2ClientOptions {
  /** Connect as this agent does (its `ca` and `lookup`), and send HTTP/1.1 requests through it. Tests pass one that trusts their CA. */
  agent?: Agent;
}

export interface ClosableHttpClient extends HttpClient {
  /** Close every connection; requests still in flight fail. */
  close(): void;
}

/** An HTTP/2 connection, and how many streams it carries now. */
interface Connection {
  session: ClientHttp2Session;
  streams: number;
}

/** How an origin is reached: its HTTP/2 connection, or HTTP/1.1 when the server did not choose h2. */
type Route = Connection | 'http1';

// RFC 9113 §8.2.2: connection-specific header fields are not allowed in HTTP/2.
const CONNECTION_HEADERS = new Set(['connection', 'host', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te']);

export function createHttp2Client(options: Http2ClientOptions = {}): ClosableHttpClient {
  const http1 = createDefaultHttpClient();
  const routes = new Map<string, Promise<Route>>();
  const sockets = new Set<tls.TLSSocket>();
  let closed = false;

  const routeTo = (url: URL): Promise<Route> => {
    let route = routes.get(url.origin);
    if (route === undefined) {
      route = negotiate(url, options.agent, sockets).then((socket) => {
        if (socket.alpnProtocol !== 'h2') {
          // One handshake spent learning this; every later request to the origin goes straight to HTTP/1.1.
          socket.destroy();
          return 'http1' as const;
        }
        return { session: openSession(url, socket, () => routes.get(url.origin) === route && routes.delete(url.origin)), streams: 0 };
      });
      routes.set(url.origin, route);
      // A failed connection is not remembered: the next attempt connects again.
      route.catch(() => routes.get(url.origin) === route && routes.delete(url.origin));
    }
    return route;
  };

  const viaHttp1 = (request: PipelineRequest): Promise<PipelineResponse> => {
    if (options.agent !== undefined && request.agent === undefined) request.agent = options.agent;
    return http1.sendRequest(request);
  };

  return {
    async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
      if (closed) throw new RestError('the HTTP client is closed', { code: RestError.REQUEST_SEND_ERROR, request });
      if (!handlesItself(request)) return viaHttp1(request);
      const url = new URL(request.url);
      let route: Route;
      try {
        route = await untilAborted(routeTo(url), request.abortSignal);
      } catch (error) {
        throw asRestError(error, request);
      }
      return route === 'http1' ? viaHttp1(request) : send(route, url, request);
    },
    close() {
      closed = true;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      routes.clear();
    },
  };
}

function handlesItself(request: PipelineRequest): boolean {
  const body = request.body;
  return (
    request.url.startsWith('https:') &&
    request.agent === undefined &&
    request.tlsSettings === undefined &&
    request.proxySettings === undefined &&
    request.requestOverrides === undefined &&
    !request.disableKeepAlive &&
    request.onUploadProgress === undefined &&
    request.onDownloadProgress === undefined &&
    (request.streamResponseStatusCodes === undefined || request.streamResponseStatusCodes.size === 0) &&
    request.formData === undefined &&
    request.multipartBody === undefined &&
    (body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array)
  );
}

// A TLS connection offering h2 and HTTP/1.1; the server chooses.
function negotiate(url: URL, agent: Agent | undefined, sockets: Set<tls.TLSSocket>): Promise<tls.TLSSocket> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port: url.port === '' ? 443 : Number(url.port),
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ALPNProtocols: ['h2', 'http/1.1'],
      ...(agent?.options.ca !== undefined ? { ca: agent.options.ca } : {}),
      ...(agent?.options.lookup !== undefined ? { lookup: agent.options.lookup } : {}),
    });
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      socket.off('error', reject);
      // Frames of many streams go out as they are ready, not held back for the last ACK (Nagle).
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}

function openSession(url: URL, socket: tls.TLSSocket, forget: () => void): ClientHttp2Session {
  const session = http2.connect(url.origin, { createConnection: () => socket });
  // Stream errors reach their requests; a session error only ends the session, and new requests connect again.
  session.on('error', forget);
  session.once('close', forget);
  // After GOAWAY the server takes no new streams on this connection.
  session.once('goaway', forget);
  // Idle, the connection does not keep the process alive; streams in flight do (see send).
  session.unref();
  return session;
}

function send(connection: Connection, url: URL, request: PipelineRequest): Promise<PipelineResponse> {
  return new Promise((resolve, reject) => {
    const body = request.body === undefined || request.body === null ? undefined : Buffer.from(request.body as string | Uint8Array);
    const headers: OutgoingHttpHeaders = { ':method': request.method, ':path': `${url.pathname}${url.search}` };
    // HTTP/2 header names are lower case; the SDK keeps the case each header was set with.
    for (const [name, value] of request.headers) {
      const lower = name.toLowerCase();
      if (!CONNECTION_HEADERS.has(lower)) headers[lower] = value;
    }
    if (body !== undefined && headers['content-length'] === undefined) headers['content-length'] = body.length;

    let stream: http2.ClientHttp2Stream | undefined;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const cleanup = (): void => {
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      request.abortSignal?.removeEventListener('abort', onAbort);
    };
    const fail = (error: Error): void => {
      if (settled) return;
      cleanup();
      reject(error);
    };
    const onAbort = (): void => {
      stream?.close(http2.constants.NGHTTP2_CANCEL);
      fail(new AbortError('The operation was aborted.'));
    };

    if (request.abortSignal?.aborted) return fail(new AbortError('The operation was aborted. Request has already been canceled.'));
    try {
      stream = connection.session.request(headers, { endStream: body === undefined });
    } catch (error) {
      // The session closed between choosing it and opening the stream.
      return fail(asRestError(error, request));
    }
    holdOpen(connection, stream);
    request.abortSignal?.addEventListener('abort', onAbort);
    if (request.timeout > 0) timer = setTimeout(onAbort, request.timeout);
    stream.on('error', (error) => fail(asRestError(error, request)));
    // Reset by the server (or with its connection) without an error of its own: the answer is incomplete.
    stream.once('close', () =>
      fail(new RestError(`the HTTP/2 stream closed before the response was complete (RST_STREAM code ${stream?.rstCode})`, { code: 'ERR_HTTP2_STREAM_CANCEL', request })),
    );
    stream.once('response', (responseHeaders) => {
      const status = Number(responseHeaders[':status']);
      const response: PipelineResponse = { request, status, headers: toHttpHeaders(responseHeaders) };
      if (request.method === 'HEAD') {
        stream?.close();
        cleanup();
        return resolve(response);
      }
      const chunks: Buffer[] = [];
      stream?.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream?.once('end', () => {
        if (settled) return;
        try {
          response.bodyAsText = decode(Buffer.concat(chunks), response.headers, request.headers).toString('utf8');
        } catch (error) {
          return fail(new RestError(`Error reading response as text: ${(error as Error).message}`, { code: RestError.PARSE_ERROR, request }));
        }
        cleanup();
        resolve(response);
      });
    });
    if (body !== undefined) stream.end(body);
  });
}

// A connection is referenced while it carries a stream, so the process waits for the answer but not for an idle connection.
function holdOpen(connection: Connection, stream: http2.ClientHttp2Stream): void {
  if (connection.streams++ === 0) connection.session.ref();
  stream.once('close', () => {
    if (--connection.streams === 0 && !connection.session.destroyed) connection.session.unref();
  });
}

function toHttpHeaders(headers: IncomingHttpHeaders): HttpHeaders {
  const result = createHttpHeaders();
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) result.set(name, String(first));
  }
  return result;
}

// The SDK asks for gzip or deflate (decompressResponsePolicy) and expects the text decoded, as its HTTP/1.1 client does.
function decode(body: Buffer, responseHeaders: HttpHeaders, requestHeaders: HttpHeaders): Buffer {
  const accepted = requestHeaders.get('accept-encoding') ?? '';
  const encoding = responseHeaders.get('content-encoding');
  if (encoding === 'gzip' && accepted.includes('gzip')) return zlib.gunzipSync(body);
  if (encoding === 'deflate' && accepted.includes('deflate')) return zlib.inflateSync(body);
  return body;
}

function asRestError(error: unknown, request: PipelineRequest): Error {
  if (error instanceof AbortError || error instanceof RestError) return error;
  const e = error as NodeJS.ErrnoException;
  return new RestError(e.message, { code: e.code ?? RestError.REQUEST_SEND_ERROR, request });
}

function untilAborted<T>(promise: Promise<T>, signal: PipelineRequest['abortSignal']): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(new AbortError('The operation was aborted. Request has already been canceled.'));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(new AbortError('The operation was aborted.'));
    signal.addEventListener('abort', onAbort);
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
