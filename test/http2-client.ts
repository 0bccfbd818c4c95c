// The fetch role's HTTP client: the real SecretClient over it against the Key Vault emulator (HTTP/2,
// and HTTP/1.1 when the vault does not offer h2), and the edges of HTTP/2 against a plain node:http2 server.
import type { IncomingMessage, ServerResponse } from 'node:http';
import http2, { type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { gzipSync, deflateSync } from 'node:zlib';
import { createDefaultHttpClient, createHttpHeaders, createPipelineRequest, type HttpHeaders, type PipelineRequest } from '@azure/core-rest-pipeline';
import { WorkloadIdentityCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import t, { type Test } from 'tap';
import { classify } from '../src/fetch/diagnose.js';
import { createHttp2Client } from '../src/fetch/http2-client.js';
import { startFetchWorld, VAULT_NAME, type FetchWorld } from './fixtures/fetch-world.js';
import { loopbackAgent } from './fixtures/loopback.js';
import { makeTestPki } from './fixtures/tls.js';

async function credentialFor(world: FetchWorld): Promise<WorkloadIdentityCredential> {
  const job = await world.job([{ objectName: 'unused', objectType: 'secret' }]);
  return new WorkloadIdentityCredential({
    clientId: job.clientId,
    tenantId: job.tenantId,
    tokenFilePath: job.tokenFile,
    authorityHost: job.authorityHost,
    disableInstanceDiscovery: true,
    agent: world.agent,
  });
}

type Handler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;

/** The same handler served over HTTP/2 and over HTTP/1.1 (each its own TLS server on 127.0.0.1), closed at teardown. */
async function serveBothProtocols(
  t: Test,
  pki: { certPem: string; keyPem: string },
  handle: Handler,
): Promise<Array<{ protocol: 'HTTP/2' | 'HTTP/1.1'; server: http2.Http2SecureServer | https.Server }>> {
  const servers = [
    { protocol: 'HTTP/2' as const, server: http2.createSecureServer({ cert: pki.certPem, key: pki.keyPem }, handle) },
    { protocol: 'HTTP/1.1' as const, server: https.createServer({ cert: pki.certPem, key: pki.keyPem }, handle) },
  ];
  for (const { server } of servers) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const { server } of servers) {
      server.close();
      if ('closeAllConnections' in server) server.closeAllConnections();
    }
  });
  return servers;
}

const PROTOCOLS = [
  { name: 'a vault that offers HTTP/2', vaultHttp2: true, httpVersion: '2.0' },
  { name: 'a vault that speaks HTTP/1.1 only', vaultHttp2: false, httpVersion: '1.1' },
];

for (const p of PROTOCOLS) {
  t.test(`the SDK reads ${p.name}`, async (t) => {
    const world = await startFetchWorld({ vaultHttp2: p.vaultHttp2, latencyMs: 5 });
    t.teardown(() => world.close());
    const names = Array.from({ length: 20 }, (_, i) => `parallel-${i}`);
    for (const name of names) world.vault.setSecret(name, `value of ${name}`);
    const httpClient = createHttp2Client({ agent: world.agent });
    t.teardown(() => httpClient.close());
    const client = new SecretClient(world.vault.vaultUrl(VAULT_NAME), await credentialFor(world), { httpClient, retryOptions: { maxRetries: 0 } });

    await client.getSecret(names[0] as string);
    const values = await Promise.all(names.map(async (name) => (await client.getSecret(name)).value));
    t.same(
      values,
      names.map((name) => `value of ${name}`),
      'every value, in order',
    );
    t.same(new Set(world.vault.requests.map((r) => r.httpVersion)), new Set([p.httpVersion]), `every request over HTTP/${p.httpVersion}`);
    if (p.vaultHttp2) t.equal(world.vault.connectionCount, 1, 'one connection carries all 22 requests');
    else t.ok(world.vault.connectionCount > 2, 'HTTP/1.1: a connection per parallel request (and one spent learning the vault has no h2)');

    const missing = await client.getSecret('absent').catch((error: unknown) => error);
    t.match(missing, { name: 'RestError', statusCode: 404, code: 'SecretNotFound' }, 'error answers reach the SDK as over HTTP/1.1');
  });
}

t.test("response headers read as the SDK's own client reads them, over both protocols", async (t) => {
  const pki = makeTestPki();
  const handle = (_req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void => {
    const out = res as ServerResponse;
    out.sendDate = false;
    out.setHeader('Content-Type', 'application/json; charset=utf-8');
    out.setHeader('x-ms-request-id', 'req-1');
    out.setHeader('set-cookie', ['a=1', 'b=2']);
    out.setHeader('x-dup', ['one', 'two']);
    out.setHeader('x-empty', '');
    out.setHeader('retry-after', 7);
    out.setHeader('content-length', 2);
    out.end('{}');
  };
  const servers = await serveBothProtocols(t, pki, handle);
  const agent = loopbackAgent(pki.caCertPem);
  const client = createHttp2Client({ agent });
  t.teardown(() => client.close());
  const url = (server: (typeof servers)[number]['server']): string => `https://headers.vault.azure.net:${(server.address() as AddressInfo).port}/`;

  // The reference: the SDK's own HTTP/1.1 client, reading the HTTP/1.1 server.
  const http1 = servers[1]?.server as https.Server;
  const referenceRequest = createPipelineRequest({ url: url(http1) });
  referenceRequest.agent = agent;
  const reference = await createDefaultHttpClient().sendRequest(referenceRequest);
  const expected = reference.headers.toJSON();
  t.same(expected, {
    'content-type': 'application/json; charset=utf-8',
    'x-ms-request-id': 'req-1',
    'set-cookie': 'a=1',
    'x-dup': 'one, two',
    'retry-after': '7',
    'content-length': '2',
    connection: 'keep-alive',
    'keep-alive': 'timeout=5',
  });

  for (const { protocol, server } of servers) {
    const transport = protocol === 'HTTP/2' ? 'over HTTP/2' : 'over HTTP/1.1';
    const fresh = async (): Promise<HttpHeaders> => (await client.sendRequest(createPipelineRequest({ url: url(server) }))).headers;
    const headers = await fresh();
    // HTTP/2 has no connection-specific headers (RFC 9113 §8.2.2).
    const want = protocol === 'HTTP/2' ? { ...expected, connection: undefined, 'keep-alive': undefined } : expected;
    const cases: Array<[name: string, value: string | undefined]> = [
      ['content-type', 'application/json; charset=utf-8'],
      ['Content-Type', 'application/json; charset=utf-8'],
      ['X-MS-Request-Id', 'req-1'],
      ['set-cookie', 'a=1'],
      ['x-dup', 'one, two'],
      ['Retry-After', '7'],
      ['x-empty', undefined],
      [':status', undefined],
      ['constructor', undefined],
      ['__proto__', undefined],
      ['absent', undefined],
    ];
    for (const [name, value] of cases) {
      t.equal(headers.get(name), value, `${transport}: get(${name})`);
      t.equal(headers.get(name), reference.headers.get(name), `${transport}: get(${name}) as the SDK's client`);
      t.equal(headers.has(name), value !== undefined, `${transport}: has(${name})`);
    }
    t.same(JSON.parse(JSON.stringify(headers.toJSON())), JSON.parse(JSON.stringify(want)), `${transport}: toJSON() as the SDK's client`);
    t.same(
      [...(await fresh())].map(([name]) => name).sort(),
      Object.keys(JSON.parse(JSON.stringify(want)) as object).sort(),
      `${transport}: iterated, the same names`,
    );

    const changed = await fresh();
    changed.set('X-Added', 1);
    changed.delete('X-DUP');
    t.equal(changed.get('x-added'), '1', `${transport}: set() then get()`);
    t.equal(changed.has('x-dup'), false, `${transport}: delete() then has()`);
    t.equal(changed.get('content-type'), 'application/json; charset=utf-8', `${transport}: the rest kept after a change`);
    t.same(changed.toJSON({ preserveCase: true })['X-Added'], '1', `${transport}: toJSON({ preserveCase }) keeps the name as set`);
  }
});

t.test('a connection reset with requests in flight: they fail as transient, the next request connects again', async (t) => {
  const world = await startFetchWorld({ latencyMs: 20 });
  t.teardown(() => world.close());
  for (const name of ['a', 'b', 'c']) world.vault.setSecret(name, name);
  const httpClient = createHttp2Client({ agent: world.agent });
  t.teardown(() => httpClient.close());
  const client = new SecretClient(world.vault.vaultUrl(VAULT_NAME), await credentialFor(world), { httpClient, retryOptions: { maxRetries: 0 } });
  await client.getSecret('a');

  world.vault.addFault({ match: '/secrets/a/', raw: 'reset' });
  const settled = await Promise.allSettled(['a', 'b', 'c'].map((name) => client.getSecret(name)));
  t.ok(
    settled.every((s) => s.status === 'rejected'),
    'the reset took every stream of the connection with it',
  );
  for (const s of settled) {
    const error = (s as PromiseRejectedResult).reason as { name: string; code: string };
    t.match(error, { name: 'RestError', code: String }, `${error.code}: a RestError with a code`);
    t.equal(classify(error).retry, true, `${error.code} is retried`);
  }
  t.equal((await client.getSecret('c')).value, 'c', 'a new connection serves the next request');
  t.equal(world.vault.connectionCount, 2);
});

t.test(
  'requests that do not choose their own HTTP/2: an agent of their own (a proxy) is used for HTTP/1.1; streamed bodies go to the SDK client',
  async (t) => {
    const world = await startFetchWorld();
    t.teardown(() => world.close());
    world.vault.setSecret('routed', 'ok');
    const token = await (await credentialFor(world)).getToken('https://vault.azure.net/.default');
    const httpClient = createHttp2Client({ agent: world.agent });
    t.teardown(() => httpClient.close());
    const base = (): PipelineRequest =>
      createPipelineRequest({
        url: `${world.vault.vaultUrl(VAULT_NAME)}secrets/routed/?api-version=7.6`,
        headers: createHttpHeaders({ authorization: `Bearer ${token?.token}` }),
      });
    const cases: Array<{ name: string; change: (r: PipelineRequest) => void; httpVersion: string }> = [
      { name: 'a plain GET', change: () => {}, httpVersion: '2.0' },
      { name: 'an agent of its own (HTTPS_PROXY sets one)', change: (r) => (r.agent = loopbackAgent(world.entra.caCertPem)), httpVersion: '1.1' },
      { name: 'a download progress callback', change: (r) => (r.onDownloadProgress = () => {}), httpVersion: '1.1' },
      { name: 'a streamed response', change: (r) => (r.streamResponseStatusCodes = new Set([200])), httpVersion: '1.1' },
      { name: 'keep-alive disabled', change: (r) => (r.disableKeepAlive = true), httpVersion: '1.1' },
    ];
    for (const c of cases) {
      world.vault.requests.length = 0;
      const request = base();
      c.change(request);
      const response = await httpClient.sendRequest(request);
      t.equal(response.status, 200, `${c.name}: answered`);
      t.equal(world.vault.requests[0]?.httpVersion, c.httpVersion, `${c.name}: over HTTP/${c.httpVersion}`);
    }
  },
);

t.test('a server the CA does not vouch for is refused, and not retried', async (t) => {
  const world = await startFetchWorld();
  t.teardown(() => world.close());
  const httpClient = createHttp2Client();
  t.teardown(() => httpClient.close());
  const request = createPipelineRequest({ url: `https://127.0.0.1:${world.vault.port}/secrets/x/?api-version=7.6` });
  const error = await httpClient.sendRequest(request).catch((e: unknown) => e);
  t.match(error, { name: 'RestError', code: /CERT|SIGNATURE|ISSUER/ });
  t.equal(classify(error).retry, false);
  t.equal(world.vault.requests.length, 0, 'nothing was sent');
});

// The edges of HTTP/2 itself, against a bare node:http2 server that does what each case needs.
t.test('HTTP/2 edges', async (t) => {
  const pki = makeTestPki();
  let onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, session: http2.ServerHttp2Session) => void = () => {};
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createSecureServer({ cert: pki.certPem, key: pki.keyPem });
  server.on('session', (session) => sessions.add(session));
  server.on('stream', (stream, headers) => {
    // A stream reset by either side (the cases below do both) reports it here; the cases check what the client saw.
    stream.on('error', () => {});
    onStream(stream, headers, stream.session as http2.ServerHttp2Session);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `https://edge.vault.azure.net:${(server.address() as AddressInfo).port}`;
  t.teardown(() => {
    for (const session of sessions) session.destroy();
    server.close();
  });
  const agent = loopbackAgent(pki.caCertPem);
  const get = (path: string, extra: Partial<Parameters<typeof createPipelineRequest>[0]> = {}): PipelineRequest =>
    createPipelineRequest({ url: `${origin}${path}`, ...extra });

  await t.test('bodies the SDK asked to be compressed are decoded; others are left alone', async (t) => {
    const text = '{"value":"compressed ✓"}';
    onStream = (stream, headers) => {
      const encoding = String(headers['x-encode'] ?? '');
      const body = encoding === 'gzip' ? gzipSync(text) : encoding === 'deflate' ? deflateSync(text) : Buffer.from(text);
      const head = headers[':method'] === 'HEAD';
      stream.respond(
        { ':status': 200, ...(encoding ? { 'content-encoding': encoding } : {}), 'x-echo-method': String(headers[':method']) },
        { endStream: head },
      );
      if (!head) stream.end(body);
    };
    const client = createHttp2Client({ agent });
    t.teardown(() => client.close());
    for (const encoding of ['gzip', 'deflate', '']) {
      const request = get('/decode', { headers: createHttpHeaders({ 'accept-encoding': 'gzip,deflate', 'x-encode': encoding }) });
      const response = await client.sendRequest(request);
      t.equal(response.bodyAsText, text, `${encoding || 'identity'}: decoded`);
      t.equal(response.headers.get('x-echo-method'), 'GET');
    }
    const notAsked = await client.sendRequest(get('/decode', { headers: createHttpHeaders({ 'x-encode': 'gzip' }) }));
    t.same(Buffer.from(notAsked.bodyAsText ?? '', 'utf8').equals(gzipSync(text)), false, 'not asked for: passed through, not decoded');
    const head = await client.sendRequest(get('/decode', { method: 'HEAD' }));
    t.equal(head.status, 200);
    t.equal(head.bodyAsText, undefined, 'HEAD: no body');
    const received = new Promise<string>((resolve) => {
      onStream = (stream) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          stream.respond({ ':status': 204 }, { endStream: true });
          resolve(Buffer.concat(chunks).toString('utf8'));
        });
      };
    });
    const [posted, answer] = await Promise.all([received, client.sendRequest(get('/post', { method: 'POST', body: '{"a":1}' }))]);
    t.equal(answer.status, 204);
    t.equal(posted, '{"a":1}', 'a request body arrives whole');
  });

  await t.test('headers in any case arrive lower-cased; connection-specific ones are dropped', async (t) => {
    let received: http2.IncomingHttpHeaders = {};
    onStream = (stream, headers) => {
      received = headers;
      stream.respond({ ':status': 200 }, { endStream: true });
    };
    const client = createHttp2Client({ agent });
    t.teardown(() => client.close());
    const headers = createHttpHeaders({
      'X-Ms-Client-Request-Id': 'id-1',
      Connection: 'keep-alive',
      Host: 'elsewhere',
      'Keep-Alive': 'timeout=5',
      'Content-Type': 'application/json',
    });
    const response = await client.sendRequest(get('/headers', { method: 'PUT', headers, body: new TextEncoder().encode('{}') }));
    t.equal(response.status, 200, 'Node refuses connection-specific headers over HTTP/2: none were sent');
    t.match(received, { 'x-ms-client-request-id': 'id-1', 'content-type': 'application/json', 'content-length': '2', ':method': 'PUT' });
    t.notOk('connection' in received || 'keep-alive' in received || 'host' in received);
    t.match(received[':authority'], /^edge\.vault\.azure\.net:\d+$/, "the authority is the URL's");
  });

  await t.test("more requests than the server's concurrent-stream limit wait their turn", async (t) => {
    const limited = http2.createSecureServer({ cert: pki.certPem, key: pki.keyPem, settings: { maxConcurrentStreams: 4 } });
    // Streams are held until four are open, then answered together: a client that waits for a free stream before
    // sending the next gets every answer; one that sends a fifth has it refused (REFUSED_STREAM) and fails; one that
    // never has four open at once gets no answer for the held ones, and the bound below fails it.
    const held: http2.ServerHttp2Stream[] = [];
    let peak = 0;
    const answer = (stream: http2.ServerHttp2Stream): void => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    };
    limited.on('stream', (stream, headers) => {
      // The first request, alone, opens the connection.
      if (headers[':path'] === '/0') return answer(stream);
      held.push(stream);
      peak = Math.max(peak, held.length);
      if (held.length === 4) held.splice(0).forEach(answer);
    });
    await new Promise<void>((resolve) => limited.listen(0, '127.0.0.1', resolve));
    const client = createHttp2Client({ agent });
    t.teardown(() => {
      client.close();
      limited.close();
    });
    const url = (i: number): string => `https://limited.vault.azure.net:${(limited.address() as AddressInfo).port}/${i}`;
    await client.sendRequest(createPipelineRequest({ url: url(0) }));
    // 20: five rounds of four.
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => client.sendRequest(createPipelineRequest({ url: url(i + 1), timeout: 10_000 }))));
    t.same(
      answers.map((a) => a.bodyAsText),
      Array(20).fill('ok'),
      'all answered, four at a time',
    );
    t.equal(peak, 4, 'never more streams at once than the server allows');
  });

  await t.test('after GOAWAY, the next request opens a new connection', async (t) => {
    onStream = (stream, _headers, session) => {
      // GOAWAY first, naming this stream as the last one served: the client reads it before the answer.
      session.goaway(http2.constants.NGHTTP2_NO_ERROR, stream.id);
      stream.respond({ ':status': 200 });
      stream.end('ok');
    };
    const client = createHttp2Client({ agent });
    t.teardown(() => client.close());
    const before = sessions.size;
    t.equal((await client.sendRequest(get('/1'))).bodyAsText, 'ok');
    t.equal((await client.sendRequest(get('/2'))).bodyAsText, 'ok');
    t.equal(sessions.size - before, 2, 'two connections');
  });

  await t.test('a stream the server refuses fails as transient', async (t) => {
    onStream = (stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    const client = createHttp2Client({ agent });
    t.teardown(() => client.close());
    const error = await client.sendRequest(get('/refused')).catch((e: unknown) => e);
    t.match(error, { name: 'RestError', code: /^ERR_HTTP2_STREAM_(ERROR|CANCEL)$/ });
    t.equal(classify(error).retry, true);
  });

  await t.test('abort and timeout cancel the stream; a closed client sends nothing', async (t) => {
    const cancelled: number[] = [];
    let bothClosed: () => void = () => {};
    const serverSawBoth = new Promise<void>((resolve) => (bothClosed = resolve));
    const controller = new AbortController();
    onStream = (stream) => {
      stream.on('close', () => {
        cancelled.push(stream.rstCode);
        if (cancelled.length === 2) bothClosed();
      });
      // Aborted once the server holds the stream, not after a fixed delay: on a loaded machine the connection alone
      // can take longer than any short delay, and a request aborted before it is sent never reaches the server.
      controller.abort();
    };
    const client = createHttp2Client({ agent });
    await t.rejects(client.sendRequest(get('/slow', { abortSignal: controller.signal })), { name: 'AbortError' }, 'aborted');
    // The connection is open now, so the stream is sent at once; the timeout leaves it ample time to arrive.
    await t.rejects(client.sendRequest(get('/slow', { timeout: 500 })), { name: 'AbortError' }, 'timed out');
    await t.rejects(client.sendRequest(get('/slow', { abortSignal: AbortSignal.abort() })), { name: 'AbortError' }, 'aborted before it started');
    await serverSawBoth;
    t.same(cancelled, [http2.constants.NGHTTP2_CANCEL, http2.constants.NGHTTP2_CANCEL], 'the server saw both streams cancelled, and no third');
    client.close();
    await t.rejects(client.sendRequest(get('/after-close')), { name: 'RestError', message: /closed/ });
  });
});

// What a server can make the client hold, over each transport: bare servers misbehave on purpose, per path.
t.test('bounds on both transports: size on the wire and decompressed, completeness, time', async (t) => {
  const pki = makeTestPki();
  const LIMIT = 64 * 1024;
  const bomb = gzipSync(Buffer.alloc(16 * 1024 * 1024));
  let cancelled: () => void = () => {};
  const handle = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void => {
    const h2 = 'stream' in req;
    const out = res as ServerResponse;
    const destroyConnection = (): void => void (h2 ? req.stream.session?.destroy() : req.socket.destroy());
    res.once('close', () => cancelled());
    switch (req.url) {
      case '/ok':
        return void out.end('ok');
      case '/cut': // content-length 100, 40 bytes, then the connection goes
        out.writeHead(200, { 'content-length': '100' });
        return void out.write('x'.repeat(40), () => setImmediate(destroyConnection));
      case '/rst': // no content-length, 40 bytes, then RST_STREAM(NO_ERROR) without END_STREAM
        out.writeHead(200);
        return void out.write('x'.repeat(40), () => setImmediate(() => (h2 ? req.stream.destroy() : destroyConnection())));
      case '/announced-huge':
        out.writeHead(200, { 'content-length': String(1024 * 1024 * 1024) });
        return void out.write('x');
      case '/endless': {
        // no content-length, chunks as fast as the client reads, until it gives up
        out.writeHead(200);
        const chunk = Buffer.alloc(16 * 1024, 'x');
        const more = (): void => {
          while (!res.destroyed && out.write(chunk));
          if (!res.destroyed) res.once('drain', more);
        };
        return more();
      }
      case '/bomb':
        out.writeHead(200, { 'content-encoding': 'gzip', 'content-length': String(bomb.length) });
        return void out.end(bomb);
      case '/corrupt-gzip':
        out.writeHead(200, { 'content-encoding': 'gzip' });
        return void out.end(Buffer.concat([bomb.subarray(0, 20), Buffer.from('not deflate at all')]));
      case '/hang':
        return;
    }
  };
  const servers = await serveBothProtocols(t, pki, handle);

  const cases: Array<{ path: string; code: string; retry: boolean; serverSeesCancel?: boolean }> = [
    { path: '/cut', code: 'ERR_RESPONSE_INCOMPLETE', retry: true },
    { path: '/rst', code: 'ERR_RESPONSE_INCOMPLETE', retry: true },
    { path: '/announced-huge', code: 'ERR_RESPONSE_TOO_LARGE', retry: false, serverSeesCancel: true },
    { path: '/endless', code: 'ERR_RESPONSE_TOO_LARGE', retry: false, serverSeesCancel: true },
    { path: '/bomb', code: 'ERR_RESPONSE_TOO_LARGE', retry: false },
    { path: '/corrupt-gzip', code: 'PARSE_ERROR', retry: true },
    { path: '/hang', code: 'ERR_RESPONSE_TIMEOUT', retry: true, serverSeesCancel: true },
  ];
  for (const { protocol, server } of servers) {
    const origin = `https://bounds.vault.azure.net:${(server.address() as AddressInfo).port}`;
    const client = createHttp2Client({ agent: loopbackAgent(pki.caCertPem), requestTimeoutMs: 500, maxResponseBytes: LIMIT });
    t.teardown(() => client.close());
    const get = (path: string): Promise<unknown> =>
      client
        .sendRequest(createPipelineRequest({ url: `${origin}${path}`, headers: createHttpHeaders({ 'accept-encoding': 'gzip,deflate' }) }))
        .catch((e: unknown) => e);
    for (const c of cases) {
      const serverSaw = new Promise<void>((resolve) => (cancelled = resolve));
      const error = await get(c.path);
      t.match(error, { name: 'RestError', code: c.code }, `${protocol} ${c.path}: ${c.code}`);
      t.equal(classify(error).retry, c.retry, `${protocol} ${c.path}: ${c.retry ? 'retried' : 'not retried'}`);
      if (c.serverSeesCancel) {
        await serverSaw;
        t.pass(`${protocol} ${c.path}: the server saw the client give up, and stopped sending`);
      }
      t.match(
        await client.sendRequest(createPipelineRequest({ url: `${origin}/ok` })),
        { status: 200, bodyAsText: 'ok' },
        `${protocol} ${c.path}: the next request is answered`,
      );
    }
  }
});

t.test('a TLS handshake that never completes costs one request time limit, and is not reused', async (t) => {
  let accepted = 0;
  let closed: () => void = () => {};
  const silent = net.createServer((socket) => {
    accepted += 1;
    socket.on('error', () => {});
    // Read (and ignore) the ClientHello: a socket that is never read never sees the client hang up.
    socket.resume();
    socket.once('close', () => closed());
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => silent.close());
  const client = createHttp2Client({ agent: loopbackAgent(makeTestPki().caCertPem), requestTimeoutMs: 300 });
  t.teardown(() => client.close());
  const url = `https://silent.vault.azure.net:${(silent.address() as AddressInfo).port}/`;
  for (const attempt of [1, 2]) {
    const gaveUp = new Promise<void>((resolve) => (closed = resolve));
    const error = await client.sendRequest(createPipelineRequest({ url })).catch((e: unknown) => e);
    t.match(error, { name: 'RestError', code: /^(ETIMEDOUT|ERR_RESPONSE_TIMEOUT)$/ }, `attempt ${attempt}: timed out`);
    t.equal(classify(error).retry, true, `attempt ${attempt}: retried`);
    await gaveUp;
    t.pass(`attempt ${attempt}: the client closed the connection it was handshaking on`);
  }
  t.equal(accepted, 2, 'the second request connected again instead of waiting on the first handshake');
});
