// The Azure SDK clients' transport for the fetch role: every request to an origin goes over one HTTP/2
// connection when the server offers h2 by ALPN, and over HTTP/1.1 otherwise. Forty parallel reads over
// HTTP/1.1 open forty TLS connections, and on a small node setting them up costs more CPU than everything
// else the fetch does per object; over HTTP/2 they share one handshake. Both paths hold what the network
// can make us do to a bound: a response's size on the wire and decompressed (response-body.ts), and its
// time (requestTimeoutMs, from the first byte sent to the last received). A request with an agent of its own
// (a proxy) goes over HTTP/1.1 through that agent, with the same bounds. Only requests whose body the caller
// reads itself (streamed responses, progress callbacks) or that bring TLS settings or request overrides go to
// the SDK's own client unchanged; the SDK clients of the fetch make none of them.
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import https, { type Agent } from 'node:https';
import type { IncomingHttpHeaders as Http1Headers } from 'node:http';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { AbortError } from '@azure/abort-controller';
import {
  createDefaultHttpClient,
  createHttpHeaders,
  RestError,
  type HttpClient,
  type HttpHeaders,
  type PipelineRequest,
  type PipelineResponse,
  type RawHttpHeaders,
} from '@azure/core-rest-pipeline';
import { bodyText, BodyReader, declaredLength, incomplete, MAX_RESPONSE_BYTES, timedOut } from './response-body.js';

export interface Http2ClientOptions {
  /** Connect as this agent does (its `ca` and `lookup`), and send HTTP/1.1 requests through it. Tests pass one that trusts their CA. */
  agent?: Agent;
  /**
   * A request with no complete answer this long after it started (connecting included) fails with
   * ERR_RESPONSE_TIMEOUT, a transient error: a server that accepts and never answers costs one attempt,
   * not the whole deadline. Default: no limit of its own (the caller's abort signal still applies).
   */
  requestTimeoutMs?: number;
  /** The largest response body, on the wire and decompressed. Default MAX_RESPONSE_BYTES. */
  maxResponseBytes?: number;
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

/** One request's bounds: what ends it (the caller's abort, or a time limit), and the size limit. */
interface Bounds {
  scope: RequestScope;
  maxBytes: number;
}

// RFC 9113 §8.2.2: connection-specific header fields are not allowed in HTTP/2.
const CONNECTION_HEADERS = new Set(['connection', 'host', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te']);
// The response headers a server may send us; Node's HTTP/1.1 parser holds them to 16 KiB already.
const MAX_HEADER_LIST_BYTES = 64 * 1024;

export function createHttp2Client(options: Http2ClientOptions = {}): ClosableHttpClient {
  const sdk = createDefaultHttpClient();
  const http1Agent = options.agent ?? new https.Agent({ keepAlive: true });
  const maxBytes = options.maxResponseBytes ?? MAX_RESPONSE_BYTES;
  const routes = new Map<string, Promise<Route>>();
  // The routes that are up, by origin: a request to one goes out in the same turn, with no promise to wait on.
  const ready = new Map<string, Route>();
  const forget = (origin: string, route: Promise<Route>): void => {
    if (routes.get(origin) !== route) return;
    routes.delete(origin);
    ready.delete(origin);
  };
  const sockets = new Set<tls.TLSSocket>();
  let closed = false;

  const routeTo = (url: URL): Promise<Route> => {
    let route = routes.get(url.origin);
    if (route === undefined) {
      const origin = url.origin;
      const connecting: Promise<Route> = negotiate(url, options.agent, sockets, options.requestTimeoutMs).then((socket) => {
        // One handshake spent learning that the server has no h2: every later request to the origin goes straight to HTTP/1.1.
        const up: Route = socket.alpnProtocol === 'h2' ? { session: openSession(url, socket, () => forget(origin, connecting)), streams: 0 } : 'http1';
        if (up === 'http1') socket.destroy();
        if (routes.get(origin) === connecting) ready.set(origin, up);
        return up;
      });
      route = connecting;
      routes.set(origin, route);
      // A failed connection is not remembered: the next attempt connects again.
      route.catch(() => forget(origin, connecting));
    }
    return route;
  };

  const send = async (request: PipelineRequest, bounds: Bounds): Promise<PipelineResponse> => {
    // The SDK types the agent loosely; at run time it is an https.Agent (a proxy's, or the caller's own).
    if (request.agent !== undefined) return sendHttp1(request, request.agent as Agent, bounds);
    const url = new URL(request.url);
    let route = ready.get(url.origin);
    if (route === undefined) {
      try {
        route = await untilAborted(routeTo(url), bounds.scope);
      } catch (error) {
        throw asRestError(error, request);
      }
    }
    return route === 'http1' ? sendHttp1(request, http1Agent, bounds) : sendHttp2(route, url, request, bounds);
  };

  return {
    async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
      if (closed) throw new RestError('the HTTP client is closed', { code: RestError.REQUEST_SEND_ERROR, request });
      if (!buffered(request)) {
        if (options.agent !== undefined && request.agent === undefined) request.agent = options.agent;
        return sdk.sendRequest(request);
      }
      const { scope, end } = requestScope(request, options.requestTimeoutMs);
      try {
        return await send(request, { scope, maxBytes });
      } finally {
        end();
      }
    },
    close() {
      closed = true;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      routes.clear();
      ready.clear();
      if (http1Agent !== options.agent) http1Agent.destroy();
    },
  };
}

// Requests whose whole answer this client reads and bounds; the rest go to the SDK's client.
function buffered(request: PipelineRequest): boolean {
  const body = request.body;
  return (
    request.url.startsWith('https:') &&
    request.tlsSettings === undefined &&
    (request.proxySettings === undefined || request.agent !== undefined) &&
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

/**
 * What ends one request: the caller's abort (an AbortError, as the SDK's client throws), the SDK's own `timeout`
 * (likewise), or this client's time limit (ERR_RESPONSE_TIMEOUT, which is retried). The first reason wins and goes to
 * the one listener of the moment: the wait for a connection, then the request itself. (A plain object: an
 * AbortController is an EventTarget, with an allocation per listener, and every read made one.)
 */
class RequestScope {
  reason: Error | undefined;
  private listener: ((reason: Error) => void) | undefined;

  abort(reason: Error): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.listener?.(reason);
  }

  /** `listener` hears the abort from now on, in place of any other; it is never called once removed. */
  listen(listener: (reason: Error) => void): void {
    this.listener = listener;
  }

  remove(listener: (reason: Error) => void): void {
    if (this.listener === listener) this.listener = undefined;
  }
}

function requestScope(request: PipelineRequest, limitMs: number | undefined): { scope: RequestScope; end: () => void } {
  const scope = new RequestScope();
  const signal = request.abortSignal;
  const onAbort = (): void => scope.abort(new AbortError('The operation was aborted.'));
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort);
  const limit = limitMs !== undefined && limitMs > 0 ? setTimeout(() => scope.abort(timedOut(request, limitMs)), limitMs) : undefined;
  const timeout =
    request.timeout > 0 ? setTimeout(() => scope.abort(new AbortError('The operation was aborted: the request timed out.')), request.timeout) : undefined;
  return {
    scope,
    end: () => {
      clearTimeout(limit);
      clearTimeout(timeout);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}

// A TLS connection offering h2 and HTTP/1.1; the server chooses. A handshake that never completes fails after `limitMs`.
function negotiate(url: URL, agent: Agent | undefined, sockets: Set<tls.TLSSocket>, limitMs: number | undefined): Promise<tls.TLSSocket> {
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
    const timer =
      limitMs !== undefined && limitMs > 0
        ? setTimeout(() => socket.destroy(new RestError(`no TLS connection to ${url.host} within ${limitMs} ms`, { code: 'ETIMEDOUT' })), limitMs)
        : undefined;
    socket.once('close', () => {
      clearTimeout(timer);
      sockets.delete(socket);
    });
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.off('error', reject);
      // Frames of many streams go out as they are ready, not held back for the last ACK (Nagle).
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}

function openSession(url: URL, socket: tls.TLSSocket, forget: () => void): ClientHttp2Session {
  const session = http2.connect(url.origin, { createConnection: () => socket, settings: { maxHeaderListSize: MAX_HEADER_LIST_BYTES } });
  // Stream errors reach their requests; a session error only ends the session, and new requests connect again.
  session.on('error', forget);
  session.once('close', forget);
  // After GOAWAY the server takes no new streams on this connection.
  session.once('goaway', forget);
  // Idle, the connection does not keep the process alive; streams in flight do (see sendHttp2).
  session.unref();
  return session;
}

function sendHttp2(connection: Connection, url: URL, request: PipelineRequest, bounds: Bounds): Promise<PipelineResponse> {
  return new Promise((resolve, reject) => {
    const body = requestBody(request);
    const headers: OutgoingHttpHeaders = { ':method': request.method, ':path': `${url.pathname}${url.search}` };
    // HTTP/2 header names are lower case; the SDK keeps the case each header was set with. (Its iterator makes a
    // generator and an array per header; its plain object is one allocation.)
    const fields = request.headers.toJSON({ preserveCase: true });
    for (const name in fields) {
      const lower = name.toLowerCase();
      if (!CONNECTION_HEADERS.has(lower)) headers[lower] = fields[name];
    }
    if (body !== undefined && headers['content-length'] === undefined) headers['content-length'] = body.length;

    let stream: http2.ClientHttp2Stream | undefined;
    const { succeed, fail, settled } = settlement(bounds.scope, resolve, reject, () => stream?.close(http2.constants.NGHTTP2_CANCEL));
    if (bounds.scope.reason !== undefined) return fail(bounds.scope.reason);
    try {
      stream = connection.session.request(headers, { endStream: body === undefined });
    } catch (error) {
      // The session closed between choosing it and opening the stream.
      return fail(asRestError(error, request));
    }
    holdOpen(connection, stream);
    const ended = watchEndStream(stream);
    stream.on('error', (error) => fail(asRestError(error, request)));
    // Reset by the server (or with its connection) before the answer was complete. Every stream closes, so the
    // error (a RestError, with its stack) is made only when there is one.
    // A stream emits 'close', 'response' and 'end' once each: plain listeners, without once()'s wrapper per event.
    stream.on('close', () => settled() || fail(incomplete(request, `the HTTP/2 stream closed early (RST_STREAM code ${stream?.rstCode})`)));
    stream.on('response', (responseHeaders) => {
      const response: PipelineResponse = { request, status: Number(responseHeaders[':status']), headers: new ResponseHeaders(responseHeaders) };
      if (request.method === 'HEAD') {
        stream?.close();
        return succeed(response);
      }
      const reader = new BodyReader(request, bounds.maxBytes, declaredLength(response.headers.get('content-length')));
      const announced = reader.announced();
      if (announced !== undefined) return fail(announced);
      stream?.on('data', (chunk: Buffer) => {
        const error = reader.add(chunk);
        if (error !== undefined) fail(error);
      });
      stream?.on('end', () => {
        if (!ended()) return fail(incomplete(request, `the HTTP/2 stream was reset without END_STREAM (RST_STREAM code ${stream?.rstCode})`));
        finishBody(reader, response, request, bounds, succeed, fail);
      });
    });
    if (body !== undefined) stream.end(body);
  });
}

function sendHttp1(request: PipelineRequest, agent: Agent, bounds: Bounds): Promise<PipelineResponse> {
  if (bounds.scope.reason !== undefined) return Promise.reject(bounds.scope.reason);
  return new Promise((resolve, reject) => {
    const url = new URL(request.url);
    const body = requestBody(request);
    const headers = request.headers.toJSON({ preserveCase: true });
    if (body !== undefined && !request.headers.has('content-length')) headers['Content-Length'] = String(body.length);
    const req = https.request({ agent, hostname: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method: request.method, headers });
    // On failure the connection goes too: the rest of an unwanted answer must not be read into it.
    const { succeed, fail, settled } = settlement(bounds.scope, resolve, reject, () => req.destroy());
    req.on('error', (error) => fail(asRestError(error, request)));
    req.on('response', (res) => {
      const response: PipelineResponse = { request, status: res.statusCode ?? 0, headers: new ResponseHeaders(res.headers) };
      if (request.method === 'HEAD') {
        res.resume();
        return succeed(response);
      }
      const reader = new BodyReader(request, bounds.maxBytes, declaredLength(response.headers.get('content-length')));
      const announced = reader.announced();
      if (announced !== undefined) return fail(announced);
      res.on('data', (chunk: Buffer) => {
        const error = reader.add(chunk);
        if (error !== undefined) fail(error);
      });
      // A connection lost mid-body: Node reports 'aborted' as an error, or the response closes without ending.
      res.on('error', () => fail(incomplete(request, 'the connection closed mid-body')));
      res.once('close', () => settled() || fail(incomplete(request, 'the connection closed mid-body')));
      res.once('end', () => {
        if (!res.complete) return fail(incomplete(request, 'the connection closed mid-body'));
        finishBody(reader, response, request, bounds, succeed, fail);
      });
    });
    req.end(body);
  });
}

/** One outcome per request: the first of success, failure or abort wins; `cancel` runs on failure. `settled` says whether one has. */
function settlement(
  scope: RequestScope,
  resolve: (response: PipelineResponse) => void,
  reject: (error: Error) => void,
  cancel: () => void,
): { succeed(response: PipelineResponse): void; fail(error: Error): void; settled(): boolean } {
  let settled = false;
  const settle = (): boolean => {
    if (settled) return false;
    settled = true;
    scope.remove(fail);
    return true;
  };
  const fail = (error: Error): void => {
    if (!settle()) return;
    cancel();
    reject(error);
  };
  if (scope.reason === undefined) scope.listen(fail);
  return { succeed: (response) => void (settle() && resolve(response)), fail, settled: () => settled };
}

function finishBody(
  reader: BodyReader,
  response: PipelineResponse,
  request: PipelineRequest,
  bounds: Bounds,
  succeed: (response: PipelineResponse) => void,
  fail: (error: Error) => void,
): void {
  const body = reader.finish();
  if (body instanceof RestError) return fail(body);
  const text = bodyText(body, response.headers, request, bounds.maxBytes);
  if (text instanceof RestError) return fail(text);
  response.bodyAsText = text;
  succeed(response);
}

/**
 * Whether the stream's body ended with END_STREAM. Node ends a stream's readable side both when END_STREAM
 * arrives and when the stream closes early (RST_STREAM, even with NO_ERROR, or its connection lost); only the
 * first means the body is whole. Node pushes the end of the data while the stream is still open in the first
 * case, and after marking it closed in the second (lib/internal/http2/core.js: onStreamRead, onStreamClose):
 * that moment is the only place the two differ, so it is watched there.
 */
function watchEndStream(stream: http2.ClientHttp2Stream): () => boolean {
  let endStream = false;
  const push = stream.push.bind(stream);
  stream.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (chunk === null && !stream.closed) endStream = true;
    return push(chunk, encoding);
  };
  return () => endStream;
}

// A connection is referenced while it carries a stream, so the process waits for the answer but not for an idle connection.
function holdOpen(connection: Connection, stream: http2.ClientHttp2Stream): void {
  if (connection.streams++ === 0) connection.session.ref();
  stream.on('close', () => {
    if (--connection.streams === 0 && !connection.session.destroyed) connection.session.unref();
  });
}

function requestBody(request: PipelineRequest): Buffer | undefined {
  return request.body === undefined || request.body === null ? undefined : Buffer.from(request.body as string | Uint8Array);
}

/**
 * A response's headers as the SDK reads them (HttpHeaders), over the header object Node.js made: names already
 * lower case, nothing copied per header. Values read as the SDK's own client gives them: a header Node.js received
 * as a list (set-cookie) as its first value, an empty one as absent. Pseudo-headers (`:status`) are not headers.
 * The first change (set, delete) or whole read (toJSON, iteration), which the SDK's policies do not make on a read,
 * copies them.
 */
class ResponseHeaders implements HttpHeaders {
  private copy: HttpHeaders | undefined;

  constructor(private readonly raw: IncomingHttpHeaders | Http1Headers) {}

  get(name: string): string | undefined {
    return this.copy === undefined ? headerValue(this.raw, name.toLowerCase()) : this.copy.get(name);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  set(name: string, value: string | number | boolean): void {
    this.own().set(name, value);
  }

  delete(name: string): void {
    this.own().delete(name);
  }

  toJSON(options?: { preserveCase?: boolean }): RawHttpHeaders {
    return this.own().toJSON(options);
  }

  [Symbol.iterator](): Iterator<[string, string]> {
    return this.own()[Symbol.iterator]();
  }

  private own(): HttpHeaders {
    if (this.copy === undefined) {
      const copy = createHttpHeaders();
      for (const name of Object.keys(this.raw)) {
        const value = headerValue(this.raw, name);
        if (value !== undefined) copy.set(name, value);
      }
      this.copy = copy;
    }
    return this.copy;
  }
}

// As the SDK's own client copies them (getResponseHeaders): a list's first value, and a single value unless empty.
function headerValue(raw: IncomingHttpHeaders | Http1Headers, name: string): string | undefined {
  if (name.startsWith(':') || !Object.hasOwn(raw, name)) return undefined;
  const value = raw[name];
  if (Array.isArray(value)) return value[0];
  return value === undefined || value === '' ? undefined : String(value);
}

function asRestError(error: unknown, request: PipelineRequest): Error {
  if (error instanceof AbortError || error instanceof RestError) return error;
  const e = error as NodeJS.ErrnoException;
  return new RestError(e.message, { code: e.code ?? RestError.REQUEST_SEND_ERROR, request });
}

function untilAborted<T>(promise: Promise<T>, scope: RequestScope): Promise<T> {
  if (scope.reason !== undefined) return Promise.reject(scope.reason);
  return new Promise((resolve, reject) => {
    scope.listen(reject);
    promise.then(
      (value) => {
        scope.remove(reject);
        resolve(value);
      },
      (error: unknown) => {
        scope.remove(reject);
        reject(error as Error);
      },
    );
  });
}
