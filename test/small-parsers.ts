// Vault URLs, clouds and durations: the small parsers the configuration relies on.
import t from 'tap';
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
    ['120', 120_000], ['1.5', 1500], ['90s', 90_000], ['2m', 120_000], ['1m30s', 90_000], ['1h', 3_600_000], ['250ms', 250],
    ['', undefined], ['soon', undefined], ['2 m', undefined], ['-1', undefined],
  ];
  for (const [text, ms] of cases) t.equal(parseDuration(text), ms, JSON.stringify(text));
  t.equal(formatDuration(120_000), '2m0s');
  t.equal(formatDuration(30_000), '30s');
  t.equal(formatDuration(250), '250ms');
});
