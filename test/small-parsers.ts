// Vault URLs, clouds, durations, names and the backoff: the small parsers and schedules the rest relies on.
import t from 'tap';
import { backoffDelay } from '../src/backoff.js';
import { isDnsLabel, isDnsSubdomain, isHostName } from '../src/dns-names.js';
import { findCloud, keyVaultResourceForHost } from '../src/clouds.js';
import { formatDuration, parseDuration } from '../src/duration.js';
import { parseVaultUrl } from '../src/vault-url.js';

t.test('vault URLs', async (t) => {
  const ok: Array<[string, string]> = [
    ['https://kv1.vault.azure.net', 'https://kv1.vault.azure.net/'],
    ['https://KV1.Vault.Azure.Net/', 'https://kv1.vault.azure.net/'],
    ['https://kv1.vault.azure.net:8443/', 'https://kv1.vault.azure.net:8443/'],
    ['https://gov-kv.vault.usgovcloudapi.net/', 'https://gov-kv.vault.usgovcloudapi.net/'],
    ['https://cn-kv.vault.azure.cn/', 'https://cn-kv.vault.azure.cn/'],
  ];
  for (const [input, url] of ok) t.same(parseVaultUrl(input), { ok: true, url }, input);
  const bad: Array<[string, RegExp]> = [
    ['kv1', /is not a URL/],
    ['http://kv1.vault.azure.net/', /must use https/],
    ['https://kv1.vault.azure.net.evil.com/', /is not a Key Vault host/],
    ['https://vault.azure.net/', /is not a Key Vault host/],
    ['https://kv1.vault.azure.net/secrets', /must not have a path/],
    ['https://kv1.vault.azure.net/?x=1', /query/],
    ['https://u:p@kv1.vault.azure.net/', /credentials/],
    ['https://k.vault.azure.net/', /vault name "k" must be 3-24/],
  ];
  for (const [input, problem] of bad) {
    const result = parseVaultUrl(input);
    t.equal(result.ok, false, input);
    if (!result.ok) t.match(result.problem, problem, input);
  }
  t.same(parseVaultUrl('https://kv1.vault.azure.cn/', ['vault.azure.net']).ok, false, 'restricted to one cloud');
});

t.test('clouds', async (t) => {
  t.equal(findCloud('azurepubliccloud')?.name, 'AzurePublicCloud');
  t.equal(findCloud('AzureCloud')?.name, 'AzurePublicCloud');
  t.equal(findCloud(' AzureUSGovernment ')?.name, 'AzureUSGovernmentCloud');
  t.equal(findCloud('AZURECHINACLOUD')?.keyVaultSuffix, 'vault.azure.cn');
  t.equal(findCloud('AzureGermanCloud'), undefined);
  t.equal(keyVaultResourceForHost('kv.vault.azure.net'), 'https://vault.azure.net');
  t.equal(keyVaultResourceForHost('kv.vault.usgovcloudapi.net'), 'https://vault.usgovcloudapi.net');
  t.equal(keyVaultResourceForHost('example.com'), undefined);
});

t.test('durations', async (t) => {
  const cases: Array<[string, number | undefined]> = [
    ['120', 120_000],
    ['1.5', 1500],
    ['90s', 90_000],
    ['2m', 120_000],
    ['1m30s', 90_000],
    ['1h', 3_600_000],
    ['250ms', 250],
    ['', undefined],
    ['soon', undefined],
    ['2 m', undefined],
    ['-1', undefined],
  ];
  for (const [text, ms] of cases) t.equal(parseDuration(text), ms, JSON.stringify(text));
  t.equal(formatDuration(120_000), '2m0s');
  t.equal(formatDuration(30_000), '30s');
  t.equal(formatDuration(250), '250ms');
});

t.test('backoff: the ceiling doubles up to the maximum, and jitter is the random share of it', async (t) => {
  const backoff = { initialMs: 100, maxMs: 1000 };
  const at = (random: number, jitter: number): number[] => [0, 1, 2, 3, 4, 5].map((n) => backoffDelay(n, { ...backoff, jitter }, () => random));
  t.same(at(1, 1), [100, 200, 400, 800, 1000, 1000], 'the ceilings');
  t.same(at(0, 0), [100, 200, 400, 800, 1000, 1000], 'no jitter: the ceiling whatever the draw');
  t.same(at(0, 1), [0, 0, 0, 0, 0, 0], 'full jitter: anywhere down to nothing');
  t.same(at(0, 0.5), [50, 100, 200, 400, 500, 500], 'half jitter: at least half the ceiling');
  t.same(at(0.25, 1), [25, 50, 100, 200, 250, 250]);
  t.equal(backoffDelay(5000, { initialMs: 0, maxMs: 1000, jitter: 0 }), 0, 'a zero start stays zero however many retries (no 0·∞)');
  t.equal(backoffDelay(5000, { ...backoff, jitter: 0 }), 1000, 'no overflow past the maximum');
});

t.test('DNS-1123 names: one label pattern, a label at most 63 characters, a subdomain or host name at most 253', async (t) => {
  const label = 'a'.repeat(63);
  const cases: Array<[string, boolean, boolean, boolean]> = [
    // name, label, subdomain, host name
    ['akv-injector', true, true, true],
    ['a', true, true, true],
    ['0abc9', true, true, true],
    [label, true, true, true],
    [`${label}b`, false, true, false],
    ['kv.vault.azure.net', false, true, true],
    [[label, label, label, 'a'.repeat(61)].join('.'), false, true, true],
    [[label, label, label, 'a'.repeat(62)].join('.'), false, false, false],
    ['*.vault.azure.net', false, false, true],
    ['*.*.example.com', false, false, false],
    ['Web.Example.com', false, false, true],
    ['', false, false, false],
    ['-a', false, false, false],
    ['a-', false, false, false],
    ['a..b', false, false, false],
    ['..', false, false, false],
    ['a_b', false, false, false],
    ['a.', false, false, false],
  ];
  for (const [name, label, subdomain, host] of cases) {
    t.same(
      [isDnsLabel(name), isDnsSubdomain(name), isHostName(name)],
      [label, subdomain, host],
      JSON.stringify(name.length > 40 ? `${name.slice(0, 20)}…(${name.length})` : name),
    );
  }
});
