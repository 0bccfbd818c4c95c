// manifests/ and examples/: every document valid against the Kubernetes schemas, both overlays rendered
// into a consistent set, and every cross-reference between the objects, the CLI and the webhook holding.
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { Certificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate';
import { Issuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Issuer';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import type {
  V1Container,
  V1ContainerPort,
  V1Deployment,
  V1MutatingWebhook,
  V1MutatingWebhookConfiguration,
  V1PodDisruptionBudget,
  V1PodSpec,
  V1Pod,
  V1Secret,
  V1Service,
} from '@kubernetes/client-node';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { CERTS_FILES, parseCertsFlags, serviceDnsNames, writeCerts as writeCertsCommand } from '../src/certs-command.js';
import { CLOUDS } from '../src/clouds.js';
import { isDnsLabel, isDnsSubdomain } from '../src/dns-names.js';
import { decodeObjectList } from '../src/object-list.js';
import { outputPaths, parseObjects } from '../src/objects.js';
import type { AdmissionRequest } from '../webhook/admission.js';
import type { SecretProviderClass } from '../webhook/lookups.js';
import { parseWebhookFlags } from '../webhook/main.js';
import { mutate } from '../webhook/mutate.js';
import { ANNOTATIONS, INIT_CONTAINER, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE, SECRETS_VOLUME, TOKEN_VOLUME } from '../webhook/names.js';
import type { WebhookSettings } from '../webhook/settings.js';
import { parseManifests, parseYamlDocuments, renderKustomization, resourceId, type KubeObject } from './fixtures/kustomize.js';
import { selects } from './fixtures/label-selector.js';
import { memoryLookups } from './fixtures/memory-lookups.js';
import { connectionAllowed, policiesFor, type Endpoint, type NetworkPolicy as Policy, type PodEndpoint, type Protocol } from './fixtures/network-policy.js';
import { podSecurityViolations } from './fixtures/pod-security.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MANIFESTS = path.join(REPO, 'manifests');
const EXAMPLES = path.join(REPO, 'examples');
const BASE = path.join(MANIFESTS, 'base');
const CERT_MANAGER = path.join(MANIFESTS, 'overlays', 'cert-manager');
const SELF_SIGNED = path.join(MANIFESTS, 'overlays', 'self-signed');
const VERSION = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const IMAGE = `ghcr.io/akv-injector/akv-injector:${VERSION}`;
// The generated files of the self-signed overlay (`akv-injector certs`), git-ignored.
const GENERATED: readonly string[] = CERTS_FILES;
// The webhook's command line (DESIGN.md).
const WEBHOOK_FLAGS = new Set(['port', 'tls-cert-file', 'tls-key-file', 'image', 'tenant-id', 'cloud', 'health-port', 'namespace', 'windows-image', 'dev']);
const USER_ANNOTATIONS = new Set<string>(Object.values(ANNOTATIONS).filter((a) => a !== ANNOTATIONS.status));
const NEVER_INJECTED = ['kube-system', 'kube-public'];

// ---------------------------------------------------------------------------------------------------------
// Files

function walk(dir: string, keep: (file: string) => boolean): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) return walk(full, keep);
      return keep(full) ? [full] : [];
    })
    .sort();
}

const isYaml = (file: string): boolean => /\.ya?ml$/.test(file);
const relative = (file: string): string => path.relative(REPO, file);

function readObjects(file: string): KubeObject[] {
  return parseManifests(readFileSync(file, 'utf8'), relative(file));
}

const isMarkdown = (file: string): boolean => file.endsWith('.md');

function markdownYamlBlocks(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(/^```ya?ml\n([\s\S]*?)^```/gm)].map((m) => m[1] ?? '');
}

/** The ```yaml blocks of a Markdown file that are whole manifests (apiVersion, kind, metadata.name). */
function markdownManifests(file: string): KubeObject[] {
  return markdownYamlBlocks(file).flatMap((block) => {
    const documents = parseYamlDocuments(block, relative(file));
    const whole = documents.every((d) => d !== null && typeof d === 'object' && 'apiVersion' in d && 'kind' in d);
    return whole ? parseManifests(block, `${relative(file)} (yaml block)`) : [];
  });
}

// ---------------------------------------------------------------------------------------------------------
// Schema validation: kubernetes-models for built-in kinds (types, required fields, enums), the client's
// model attribute maps for unknown fields (kubectl's --validate=strict), hand-written checks for the CRDs.

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: never) => Validatable;

const BUILT_IN: Record<string, { model: ModelClass; type: string }> = {
  'v1 Namespace': { model: Namespace, type: 'V1Namespace' },
  'v1 ServiceAccount': { model: ServiceAccount, type: 'V1ServiceAccount' },
  'v1 Service': { model: Service, type: 'V1Service' },
  'v1 Secret': { model: Secret, type: 'V1Secret' },
  'v1 ConfigMap': { model: ConfigMap, type: 'V1ConfigMap' },
  'v1 Pod': { model: Pod, type: 'V1Pod' },
  'apps/v1 Deployment': { model: Deployment, type: 'V1Deployment' },
  'policy/v1 PodDisruptionBudget': { model: PodDisruptionBudget, type: 'V1PodDisruptionBudget' },
  'networking.k8s.io/v1 NetworkPolicy': { model: NetworkPolicy, type: 'V1NetworkPolicy' },
  'rbac.authorization.k8s.io/v1 ClusterRole': { model: ClusterRole, type: 'V1ClusterRole' },
  'rbac.authorization.k8s.io/v1 ClusterRoleBinding': { model: ClusterRoleBinding, type: 'V1ClusterRoleBinding' },
  'admissionregistration.k8s.io/v1 MutatingWebhookConfiguration': { model: MutatingWebhookConfiguration, type: 'V1MutatingWebhookConfiguration' },
};
const CUSTOM: Record<string, (object: KubeObject) => string[]> = {
  'cert-manager.io/v1 Issuer': checkIssuer,
  'cert-manager.io/v1 Certificate': checkCertificate,
  'secrets-store.csi.x-k8s.io/v1 SecretProviderClass': checkSecretProviderClass,
};
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration']);

/** Every problem with `object`'s schema; empty when the API server would accept it. */
function schemaProblems(object: KubeObject): string[] {
  const key = `${object.apiVersion} ${object.kind}`;
  const problems = metadataProblems(object);
  const builtIn = BUILT_IN[key];
  if (builtIn !== undefined) {
    try {
      new builtIn.model(structuredClone(object) as never).validate();
    } catch (error) {
      problems.push(String((error as Error).message));
    }
    problems.push(...unknownFields(object, builtIn.type, ''));
    return problems;
  }
  const custom = CUSTOM[key];
  if (custom === undefined) return [...problems, `no schema for ${key}: add it to the test`];
  const extra = Object.keys(object).filter((k) => !['apiVersion', 'kind', 'metadata', 'spec'].includes(k));
  return [...problems, ...extra.map((k) => `unknown top-level field ${k}`), ...custom(object)];
}

function metadataProblems(object: KubeObject): string[] {
  const problems: string[] = [];
  const { name, namespace } = object.metadata;
  if (!isDnsSubdomain(name)) problems.push(`metadata.name ${name} is not a DNS subdomain`);
  if (CLUSTER_SCOPED.has(object.kind) && namespace !== undefined) problems.push(`${object.kind} is cluster-scoped but has a namespace`);
  if (!CLUSTER_SCOPED.has(object.kind) && (namespace === undefined || !isDnsLabel(namespace))) {
    problems.push(`${object.kind} ${name} needs an explicit namespace (a DNS label); got ${String(namespace)}`);
  }
  return problems;
}

type AttributeMap = Array<{ baseName: string; type: string }>;
const CLIENT_MODELS = k8s as unknown as Record<string, { getAttributeTypeMap?: () => AttributeMap } | undefined>;

/** Fields the Kubernetes API does not know (a typo would otherwise be dropped silently, or refused by kubectl). */
function unknownFields(value: unknown, type: string, at: string): string[] {
  if (value === null || value === undefined) return [];
  const array = /^Array<(.+)>$/.exec(type);
  if (array !== null) return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, array[1] as string, `${at}[${i}]`)) : [];
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map !== null) return isMap(value) ? Object.entries(value).flatMap(([k, v]) => unknownFields(v, map[1] as string, `${at}.${k}`)) : [];
  const attributes = CLIENT_MODELS[type]?.getAttributeTypeMap?.();
  if (attributes === undefined || !isMap(value)) return [];
  return Object.entries(value).flatMap(([key, inner]) => {
    const attribute = attributes.find((a) => a.baseName === key);
    if (attribute === undefined) return [`${at}.${key}: unknown field (in ${type})`];
    return unknownFields(inner, attribute.type, `${at}.${key}`);
  });
}

function isMap(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

// cert-manager.io/v1: the CRDs' schemas (@kubernetes-models/cert-manager: types, enums, required fields), the fields
// `kubectl apply`'s strict field validation knows, and the rules cert-manager's own webhook adds to the schema.
const ISSUER_TYPES = ['acme', 'ca', 'vault', 'selfSigned', 'venafi'];
const CERTIFICATE_FIELDS = [
  'secretName',
  'secretTemplate',
  'commonName',
  'dnsNames',
  'uris',
  'emailAddresses',
  'ipAddresses',
  'otherNames',
  'subject',
  'literalSubject',
  'duration',
  'renewBefore',
  'renewBeforePercentage',
  'issuerRef',
  'isCA',
  'usages',
  'privateKey',
  'keystores',
  'encodeUsagesInRequest',
  'revisionHistoryLimit',
  'additionalOutputFormats',
  'nameConstraints',
  'signatureAlgorithm',
];
const GO_DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

/** What the CRD's schema refuses, as `Kind: path message` lines. */
function crdSchemaProblems(kind: string, validate: () => void): string[] {
  try {
    validate();
    return [];
  } catch (error) {
    return (error as Error).message.split(', ').map((line) => `${kind}: ${line.replace(/^data\//, '')}`);
  }
}

function unknownSpecFields(kind: string, spec: Record<string, unknown>, known: readonly string[]): string[] {
  return Object.keys(spec)
    .filter((k) => !known.includes(k))
    .map((k) => `${kind}: unknown spec field ${k}`);
}

function checkIssuer(object: KubeObject): string[] {
  const spec = object.spec;
  if (!isMap(spec)) return ['Issuer: spec is required'];
  const problems = [
    ...crdSchemaProblems('Issuer', () => new Issuer(structuredClone(object) as never).validate()),
    ...unknownSpecFields('Issuer', spec, ISSUER_TYPES),
  ];
  const types = Object.keys(spec).filter((k) => ISSUER_TYPES.includes(k));
  if (types.length !== 1) problems.push(`Issuer: exactly one issuer type of ${ISSUER_TYPES.join(', ')}; got ${types.join(', ') || 'none'}`);
  return problems;
}

function checkCertificate(object: KubeObject): string[] {
  const spec = object.spec;
  if (!isMap(spec)) return ['Certificate: spec is required'];
  const problems = [
    ...crdSchemaProblems('Certificate', () => new Certificate(structuredClone(object) as never).validate()),
    ...unknownSpecFields('Certificate', spec, CERTIFICATE_FIELDS),
  ];
  if (typeof spec.secretName === 'string' && !isDnsSubdomain(spec.secretName)) problems.push(`Certificate: secretName ${spec.secretName}`);
  const identities = ['commonName', 'dnsNames', 'uris', 'emailAddresses', 'ipAddresses', 'otherNames', 'literalSubject'];
  if (!identities.some((k) => spec[k] !== undefined)) problems.push(`Certificate: at least one of ${identities.join(', ')}`);
  if (typeof spec.commonName === 'string' && spec.commonName.length > 64) problems.push('Certificate: commonName must be at most 64 characters');
  const duration = spec.duration === undefined ? 2160 : goHours(spec.duration, 'duration', problems);
  const renewBefore = spec.renewBefore === undefined ? duration / 3 : goHours(spec.renewBefore, 'renewBefore', problems);
  if (duration < 1) problems.push('Certificate: duration must be at least 1h');
  if (renewBefore >= duration) problems.push('Certificate: renewBefore must be less than duration');
  const privateKey = isMap(spec.privateKey) ? spec.privateKey : {};
  const sizes: Record<string, number[]> = { RSA: [2048, 3072, 4096, 8192], ECDSA: [256, 384, 521], Ed25519: [] };
  const allowedSizes = sizes[String(privateKey.algorithm ?? 'RSA')] ?? [];
  if (privateKey.size !== undefined && !allowedSizes.includes(Number(privateKey.size)))
    problems.push(`Certificate: privateKey.size ${String(privateKey.size)}`);
  return problems;
}

function goHours(value: unknown, field: string, problems: string[]): number {
  if (typeof value !== 'string' || !GO_DURATION.test(value)) {
    problems.push(`Certificate: ${field} ${String(value)} is not a Go duration`);
    return 0;
  }
  const units: Record<string, number> = { h: 1, m: 1 / 60, s: 1 / 3600, ms: 1 / 3.6e6, us: 1 / 3.6e9, µs: 1 / 3.6e9, ns: 1 / 3.6e12 };
  return [...value.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)].reduce((sum, [, n, unit]) => sum + Number(n) * (units[unit as string] ?? 0), 0);
}

// secrets-store.csi.x-k8s.io/v1, with the Azure provider's parameters.
function checkSecretProviderClass(object: KubeObject): string[] {
  const spec = object.spec;
  if (!isMap(spec)) return ['SecretProviderClass: spec is required'];
  const problems = Object.keys(spec)
    .filter((k) => !['provider', 'parameters', 'secretObjects'].includes(k))
    .map((k) => `SecretProviderClass: unknown spec field ${k}`);
  if (spec.provider !== 'azure') problems.push(`SecretProviderClass: provider must be azure, got ${String(spec.provider)}`);
  const parameters = spec.parameters;
  if (!isMap(parameters)) return [...problems, 'SecretProviderClass: parameters are required'];
  for (const [key, value] of Object.entries(parameters))
    if (typeof value !== 'string') problems.push(`SecretProviderClass: parameter ${key} must be a string (quote it)`);
  if (!parameters.keyvaultName) problems.push('SecretProviderClass: keyvaultName is required');
  if (!parameters.tenantId && !parameters.tenantID) problems.push('SecretProviderClass: tenantId (or tenantID) is required');
  problems.push(...objectListProblems(String(parameters.objects ?? ''), 'SecretProviderClass objects'));
  return problems;
}

function objectListProblems(text: string, where: string): string[] {
  const decoded = decodeObjectList(text);
  if (!decoded.ok) return [`${where}: ${decoded.problem}`];
  return parseObjects(decoded.items).problems.map((p) => `${where}: ${p}`);
}

function objectList(text: string): ReturnType<typeof parseObjects>['objects'] {
  const decoded = decodeObjectList(text);
  return decoded.ok ? parseObjects(decoded.items).objects : [];
}

// ---------------------------------------------------------------------------------------------------------
// What the API server and the scheduler would check across objects

/** Names that workloads in `objects` refer to and that must exist among them. */
function referenceProblems(objects: KubeObject[], external: { secrets?: string[] } = {}): string[] {
  const problems: string[] = [];
  const exists = (kind: string, namespace: string | undefined, name: string): boolean =>
    objects.some((o) => o.kind === kind && o.metadata.name === name && o.metadata.namespace === namespace);
  const namespaces = new Set(objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name));
  for (const object of objects) {
    if (object.metadata.namespace !== undefined && !namespaces.has(object.metadata.namespace)) {
      problems.push(`${resourceId(object)}: its namespace is not in the set`);
    }
  }
  for (const deployment of objects.filter((o) => o.kind === 'Deployment') as unknown as V1Deployment[]) {
    const ns = deployment.metadata?.namespace;
    const where = `Deployment ${ns}/${deployment.metadata?.name}`;
    const template = deployment.spec?.template;
    const spec = template?.spec as V1PodSpec;
    if (!selects(deployment.spec?.selector, template?.metadata?.labels ?? {})) problems.push(`${where}: selector does not match the template labels`);
    const account = spec.serviceAccountName ?? 'default';
    if (account !== 'default' && !exists('ServiceAccount', ns, account)) problems.push(`${where}: ServiceAccount ${account} missing`);
    const volumes = new Set((spec.volumes ?? []).map((v) => v.name));
    for (const container of [...(spec.initContainers ?? []), ...spec.containers]) {
      for (const mount of container.volumeMounts ?? []) if (!volumes.has(mount.name)) problems.push(`${where}: mount of unknown volume ${mount.name}`);
    }
    for (const volume of spec.volumes ?? []) {
      if (volume.configMap && !exists('ConfigMap', ns, volume.configMap.name as string)) problems.push(`${where}: ConfigMap ${volume.configMap.name} missing`);
      const secret = volume.secret?.secretName;
      if (secret !== undefined && !exists('Secret', ns, secret) && !(external.secrets ?? []).includes(secret))
        problems.push(`${where}: Secret ${secret} missing`);
    }
  }
  for (const service of objects.filter((o) => o.kind === 'Service') as unknown as V1Service[]) {
    const pods = podTemplatesIn(objects, service.metadata?.namespace).filter((p) => selects({ matchLabels: service.spec?.selector ?? {} }, p.labels));
    if (pods.length === 0) problems.push(`Service ${service.metadata?.name}: selects no pod template`);
    for (const port of service.spec?.ports ?? []) {
      for (const pod of pods) {
        if (containerPort(pod.spec.containers, port.targetPort ?? port.port) === undefined) {
          problems.push(`Service ${service.metadata?.name}: targetPort ${String(port.targetPort)} is no container port`);
        }
      }
    }
  }
  for (const policy of objects.filter((o) => o.kind === 'NetworkPolicy') as unknown as Policy[]) {
    const pods = podTemplatesIn(objects, policy.metadata?.namespace).filter((p) => selects(policy.spec?.podSelector, p.labels));
    if (pods.length === 0) problems.push(`NetworkPolicy ${policy.metadata?.name}: selects no pod template`);
  }
  return problems;
}

function podTemplatesIn(objects: KubeObject[], namespace: string | undefined): Array<{ labels: Record<string, string>; spec: V1PodSpec }> {
  return (objects.filter((o) => o.kind === 'Deployment' && o.metadata.namespace === namespace) as unknown as V1Deployment[]).map((d) => ({
    labels: d.spec?.template.metadata?.labels ?? {},
    spec: d.spec?.template.spec as V1PodSpec,
  }));
}

/** The container port a Service targetPort or probe port (name or number) resolves to. */
function containerPort(containers: V1Container[], port: number | string): number | undefined {
  for (const container of containers) {
    for (const p of container.ports ?? []) {
      if (typeof port === 'string' ? p.name === port : p.containerPort === port) return p.containerPort;
    }
  }
  return undefined;
}

function quantity(value: string | number | undefined): number {
  if (value === undefined) return Number.NaN;
  const match = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|k|M|G)?$/.exec(String(value));
  if (match === null) return Number.NaN;
  const factor: Record<string, number> = { '': 1, m: 1e-3, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, k: 1e3, M: 1e6, G: 1e9 };
  return Number(match[1]) * (factor[match[2] ?? ''] ?? Number.NaN);
}

// ---------------------------------------------------------------------------------------------------------
// The API server's webhook matching: namespaceSelector, then matchConditions in CEL. The CEL here is the
// small part our conditions use (has(), `in`, !, &&, || with CEL's error absorption), evaluated by hand.

type CelValue = boolean | string | Record<string, unknown> | CelError;
class CelError {
  constructor(readonly message: string) {}
}

function evaluateCel(expression: string, activation: Record<string, unknown>): CelValue {
  const tokens = expression.match(/\s*('[^']*'|"[^"]*"|&&|\|\||!|\(|\)|\.|[A-Za-z_][A-Za-z0-9_]*)\s*/g)?.map((s) => s.trim()) ?? [];
  if (tokens.join('').replace(/\s/g, '') !== expression.replace(/\s/g, '')) throw new Error(`CEL outside the supported subset: ${expression}`);
  let i = 0;
  const peek = (): string | undefined => tokens[i];
  const take = (expected?: string): string => {
    const token = tokens[i++];
    if (token === undefined || (expected !== undefined && token !== expected))
      throw new Error(`CEL: expected ${expected ?? 'a token'} at ${i} in ${expression}`);
    return token;
  };
  const select = (): string[] => {
    const path = [take()];
    while (peek() === '.') {
      take('.');
      path.push(take());
    }
    return path;
  };
  const resolve = (names: string[]): CelValue => {
    let current: unknown = activation;
    for (const name of names) {
      if (!isMap(current) || !Object.hasOwn(current, name)) return new CelError(`no such key: ${name}`);
      current = current[name];
    }
    return current as CelValue;
  };
  const primary = (): CelValue => {
    const token = peek();
    if (token === '(') {
      take('(');
      const value = or();
      take(')');
      return value;
    }
    if (token === 'has') {
      take('has');
      take('(');
      const names = select();
      take(')');
      const parent = resolve(names.slice(0, -1));
      if (parent instanceof CelError) return parent;
      return isMap(parent) && Object.hasOwn(parent, names[names.length - 1] as string);
    }
    if (token !== undefined && /^['"]/.test(token)) return take().slice(1, -1);
    return resolve(select());
  };
  const relation = (): CelValue => {
    const left = primary();
    if (peek() !== 'in') return left;
    take('in');
    const right = primary();
    if (left instanceof CelError) return left;
    if (right instanceof CelError) return right;
    if (typeof left !== 'string' || !isMap(right)) return new CelError('`in` needs a string and a map');
    return Object.hasOwn(right, left);
  };
  const unary = (): CelValue => {
    if (peek() !== '!') return relation();
    take('!');
    const value = unary();
    return typeof value === 'boolean' ? !value : value instanceof CelError ? value : new CelError('! of a non-boolean');
  };
  // CEL's && and || are commutative: a side that decides the result absorbs an error on the other side.
  const logical = (operator: '&&' | '||', operand: () => CelValue): CelValue => {
    let value = operand();
    while (peek() === operator) {
      take(operator);
      const right = operand();
      const decisive = operator === '&&' ? false : true;
      if (value === decisive || right === decisive) value = decisive;
      else if (value instanceof CelError) value = value as CelError;
      else if (right instanceof CelError) value = right;
      else if (typeof value !== 'boolean' || typeof right !== 'boolean') value = new CelError(`${operator} of a non-boolean`);
      else value = !decisive;
    }
    return value;
  };
  const and = (): CelValue => logical('&&', unary);
  const or = (): CelValue => logical('||', and);
  const result = or();
  if (i !== tokens.length) throw new Error(`CEL: unexpected ${tokens[i]} in ${expression}`);
  return result;
}

/** Whether the API server calls `webhook` for a CREATE of `pod` in a namespace with `namespaceLabels`. */
function webhookCalled(webhook: V1MutatingWebhook, pod: V1Pod, namespaceLabels: Record<string, string>): boolean {
  if (!selects(webhook.namespaceSelector, namespaceLabels)) return false;
  if (!selects(webhook.objectSelector, pod.metadata?.labels ?? {})) return false;
  return (webhook.matchConditions ?? []).every((condition) => {
    const value = evaluateCel(condition.expression, { object: pod, oldObject: null });
    // With failurePolicy Fail an evaluation error rejects the pod: our conditions must never err.
    if (typeof value !== 'boolean')
      throw new Error(`matchCondition ${condition.name} of ${webhook.name} gives ${value instanceof CelError ? `an error: ${value.message}` : String(value)}`);
    return value;
  });
}

/** The labels the API server gives a namespace, plus `labels`. */
function namespaceLabels(name: string, labels: Record<string, string> = {}): Record<string, string> {
  return { ...labels, 'kubernetes.io/metadata.name': name };
}

// ---------------------------------------------------------------------------------------------------------
// The rendered sets

function find<T>(objects: KubeObject[], kind: string, name?: string): T {
  const matches = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (matches.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${matches.length}`);
  return matches[0] as unknown as T;
}

interface Installation {
  deployment: V1Deployment;
  spec: V1PodSpec;
  container: V1Container;
  service: V1Service;
  webhooks: V1MutatingWebhook[];
  configuration: V1MutatingWebhookConfiguration;
}

function installation(objects: KubeObject[]): Installation {
  const deployment = find<V1Deployment>(objects, 'Deployment', 'akv-injector');
  const spec = deployment.spec?.template.spec as V1PodSpec;
  const configuration = find<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration');
  return {
    deployment,
    spec,
    container: spec.containers[0] as V1Container,
    service: find<V1Service>(objects, 'Service', 'akv-injector'),
    webhooks: configuration.webhooks ?? [],
    configuration,
  };
}

function flagValue(args: string[], flag: string): string | undefined {
  const prefix = `--${flag}=`;
  return args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

function validateAll(t: Test, objects: KubeObject[], label: string): void {
  for (const object of objects) t.same(schemaProblems(object), [], `${label}: ${resourceId(object)} is valid`);
}

/** A temporary copy of manifests/, without generated files, removed after the test. */
function copyOfManifests(t: Test): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'akv-injector-manifests-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(MANIFESTS, path.join(dir, 'manifests'), { recursive: true });
  for (const name of GENERATED) rmSync(path.join(dir, 'manifests', 'overlays', 'self-signed', name), { force: true });
  return dir;
}

/** What `akv-injector certs` writes, by the command's own code: ca.crt, tls.crt, tls.key and the Secret. */
async function writeCerts(outDir: string, service: string, namespace: string, secretName: string): Promise<{ ca: string; cert: string }> {
  const { flags, problems } = parseCertsFlags(['--service', service, '--namespace', namespace, '--out-dir', outDir, '--secret-name', secretName]);
  if (flags === undefined) throw new Error(problems.join('; '));
  await writeCertsCommand(flags);
  return { ca: readFileSync(path.join(outDir, 'ca.crt'), 'utf8'), cert: readFileSync(path.join(outDir, 'tls.crt'), 'utf8') };
}

const base = renderKustomization(BASE);

// ---------------------------------------------------------------------------------------------------------

t.test('every YAML file parses, and means the same to YAML 1.1 (kubectl) and YAML 1.2 readers', async (t) => {
  const files = [...walk(MANIFESTS, isYaml), ...walk(EXAMPLES, isYaml)].filter((f) => !GENERATED.includes(path.basename(f)));
  t.ok(files.length > 15, `${files.length} files`);
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    t.same(parseYamlDocuments(text, relative(file), '1.2'), parseYamlDocuments(text, relative(file), '1.1'), relative(file));
  }
  for (const file of [...walk(MANIFESTS, isMarkdown), ...walk(EXAMPLES, isMarkdown)]) {
    for (const block of markdownYamlBlocks(file)) {
      t.same(parseYamlDocuments(block, relative(file), '1.2'), parseYamlDocuments(block, relative(file), '1.1'), `${relative(file)}: a yaml block`);
    }
  }
});

t.test('every YAML file under manifests/ is used by a kustomization', async (t) => {
  const kustomizations = walk(MANIFESTS, (f) => path.basename(f) === 'kustomization.yaml');
  const used = new Set(kustomizations.map(relative));
  for (const file of kustomizations) {
    const k = parseYamlDocuments(readFileSync(file, 'utf8'), relative(file))[0] as {
      resources?: string[];
      patches?: Array<{ path?: string }>;
      configurations?: string[];
    };
    for (const entry of [...(k.resources ?? []), ...(k.patches ?? []).map((p) => p.path ?? ''), ...(k.configurations ?? [])])
      used.add(relative(path.resolve(path.dirname(file), entry)));
  }
  const files = walk(MANIFESTS, isYaml).filter((f) => !GENERATED.includes(path.basename(f)));
  for (const file of files) t.ok(used.has(relative(file)), `${relative(file)} is referenced`);
});

t.test('base: every object is valid and the set is consistent', async (t) => {
  t.same(base.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
    'ClusterRole/akv-injector',
    'ClusterRoleBinding/akv-injector',
    'Deployment/akv-injector',
    'MutatingWebhookConfiguration/akv-injector',
    'Namespace/akv-injector',
    'NetworkPolicy/akv-injector',
    'PodDisruptionBudget/akv-injector',
    'Service/akv-injector',
    'ServiceAccount/akv-injector',
  ]);
  validateAll(t, base, 'base');
  // The TLS Secret comes from an overlay.
  t.same(referenceProblems(base, { secrets: ['akv-injector-tls'] }), []);
});

t.test('base: the Deployment runs the webhook role with flags the CLI knows', async (t) => {
  const { deployment, container, spec } = installation(base);
  const namespace = deployment.metadata?.namespace as string;
  const args = container.args ?? [];
  t.equal(container.command, undefined, 'the image entrypoint runs the CLI');
  t.equal(args[0], 'webhook', 'first arg is the role');
  for (const arg of args.slice(1)) {
    const match = /^--([a-z-]+)(=.*)?$/.exec(arg);
    t.ok(match !== null && WEBHOOK_FLAGS.has(match[1] as string), `${arg} is a webhook flag`);
    t.ok(match?.[2] !== undefined, `${arg} is written --flag=value`);
  }
  t.notOk(args.includes('--dev'), 'no --dev in production');
  t.equal(container.image, IMAGE, 'the image matches package.json version');
  t.equal(flagValue(args, 'image'), undefined, '--image from AKV_INJECTOR_IMAGE, which kustomize keeps in step with the image');
  const imageEnv = container.env?.find((e) => e.name === 'AKV_INJECTOR_IMAGE')?.value;
  t.equal(imageEnv, container.image, "the init container image is the webhook's own image");

  // POD_NAMESPACE from the downward API, as the webhook reads it when --namespace is absent.
  const env = container.env?.find((e) => e.name === 'POD_NAMESPACE');
  t.same(env?.valueFrom, { fieldRef: { fieldPath: 'metadata.namespace' } });
  t.equal(flagValue(args, 'namespace'), undefined, 'own namespace from POD_NAMESPACE');

  // The real flag parser accepts them.
  const parsed = parseWebhookFlags(args.slice(1), { env: { POD_NAMESPACE: namespace, AKV_INJECTOR_IMAGE: imageEnv }, readNamespaceFile: () => undefined });
  t.same(parsed.ok ? [] : parsed.problems, [], 'parseWebhookFlags accepts the args');
  if (!parsed.ok) return;
  const { config } = parsed;
  t.equal(config.settings.namespace, namespace);
  t.equal(config.settings.image, IMAGE);

  // Ports: --port is the container port named https; --health-port the one named health, where the probes go.
  t.equal(containerPort([container], 'https'), config.port, '--port is the https container port');
  t.equal(containerPort([container], 'health'), config.healthPort, '--health-port is the health container port');
  const readiness = container.readinessProbe?.httpGet;
  const liveness = container.livenessProbe?.httpGet;
  t.equal(readiness?.path, '/readyz');
  t.equal(liveness?.path, '/healthz');
  for (const probe of [readiness, liveness]) {
    t.equal(containerPort([container], probe?.port as string | number), config.healthPort, 'probe on the health port');
    t.not(probe?.scheme, 'HTTPS', 'the health port is plain HTTP');
  }

  // TLS: the files named by the flags are the Secret volume's tls.crt and tls.key.
  t.equal(config.tls.kind, 'files');
  if (config.tls.kind !== 'files') return;
  const mount = container.volumeMounts?.find((m) => path.posix.dirname(config.tls.kind === 'files' ? config.tls.certFile : '') === m.mountPath);
  t.ok(mount, 'the certificate file is in a mounted volume');
  t.equal(mount?.mountPath, '/etc/akv-injector/tls');
  t.equal(mount?.readOnly, true);
  t.equal(config.tls.certFile, `${mount?.mountPath}/tls.crt`);
  t.equal(config.tls.keyFile, `${mount?.mountPath}/tls.key`);
  const volume = spec.volumes?.find((v) => v.name === mount?.name);
  t.equal(volume?.secret?.secretName, 'akv-injector-tls');
  t.equal(volume?.secret?.items, undefined, 'every key of the Secret, as the kubelet updates them');
  // 0440 with the group as fsGroup: the webhook's user reads the key, no one else.
  t.equal(volume?.secret?.defaultMode, 0o440);
  t.equal(spec.securityContext?.fsGroup, spec.securityContext?.runAsGroup);
});

/** The webhook container's image, and the image its --image resolves to (flag, else AKV_INJECTOR_IMAGE). */
function webhookImages(objects: KubeObject[]): { image: string | undefined; initImage: string | undefined } {
  const { container } = installation(objects);
  const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value]));
  const parsed = parseWebhookFlags((container.args ?? []).slice(1), { env, readNamespaceFile: () => 'akv-injector' });
  return { image: container.image, initImage: parsed.ok ? parsed.config.settings.image : `invalid: ${parsed.problems.join('; ')}` };
}

t.test("an images: override in an overlay of yours changes the webhook's image and its --image together", async (t) => {
  const dir = copyOfManifests(t);
  await writeCerts(path.join(dir, 'manifests', 'overlays', 'self-signed'), 'akv-injector', 'akv-injector', 'akv-injector-tls');
  const digest = `sha256:${'0123456789abcdef'.repeat(4)}`;
  const overrides: Array<[string, string, string]> = [
    ['newName and newTag', 'newName: myregistry.azurecr.io/platform/akv-injector\n    newTag: 1.2.3', 'myregistry.azurecr.io/platform/akv-injector:1.2.3'],
    ['newTag', 'newTag: 0.2.0-rc.1', 'ghcr.io/akv-injector/akv-injector:0.2.0-rc.1'],
    ['digest', `newName: registry.example.com:5000/akv-injector\n    digest: ${digest}`, `registry.example.com:5000/akv-injector@${digest}`],
  ];
  for (const overlay of ['cert-manager', 'self-signed']) {
    t.same(webhookImages(renderKustomization(path.join(dir, 'manifests', 'overlays', overlay))), { image: IMAGE, initImage: IMAGE }, `${overlay}: as shipped`);
    for (const [what, entry, expected] of overrides) {
      const mine = mkdtempSync(path.join(dir, 'mine-'));
      writeFileSync(
        path.join(mine, 'kustomization.yaml'),
        `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../manifests/overlays/${overlay}\nimages:\n  - name: ghcr.io/akv-injector/akv-injector\n    ${entry}\n`,
      );
      const objects = renderKustomization(mine);
      t.same(webhookImages(objects), { image: expected, initImage: expected }, `${overlay}, images: ${what}`);
      const { container } = installation(objects);
      t.equal(container.env?.find((e) => e.name === 'NODE_OPTIONS')?.value, '--max-old-space-size=128 --max-semi-space-size=2', 'other env values untouched');
    }
  }
});

t.test('base: the Deployment is highly available and restricted', async (t) => {
  const { deployment, spec, container } = installation(base);
  const podLabels = deployment.spec?.template.metadata?.labels ?? {};
  t.equal(deployment.spec?.replicas, 2);
  t.equal(spec.priorityClassName, 'system-cluster-critical');
  t.equal(spec.automountServiceAccountToken, true, 'the webhook reads the API');
  t.equal(spec.serviceAccountName, 'akv-injector');
  const spread = spec.topologySpreadConstraints ?? [];
  t.equal(spread.length, 1);
  t.equal(spread[0]?.topologyKey, 'kubernetes.io/hostname');
  t.ok(selects(spread[0]?.labelSelector, podLabels), 'the spread counts these pods');

  t.same(podSecurityViolations(deployment.spec?.template ?? {}, 'restricted'), [], 'restricted Pod Security Standard');
  t.match(spec.securityContext, { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
  t.match(container.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
  const namespace = find<KubeObject>(base, 'Namespace', deployment.metadata?.namespace);
  t.equal(namespace.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');

  const { requests = {}, limits = {} } = container.resources ?? {};
  for (const resource of ['cpu', 'memory']) {
    t.ok(quantity(requests[resource]) > 0, `${resource} request`);
    t.ok(quantity(limits[resource]) >= quantity(requests[resource]), `${resource} limit ≥ request`);
  }

  const pdb = find<V1PodDisruptionBudget>(base, 'PodDisruptionBudget');
  t.equal(pdb.metadata?.namespace, deployment.metadata?.namespace);
  t.equal(pdb.spec?.minAvailable, 1);
  t.ok((pdb.spec?.minAvailable as number) < (deployment.spec?.replicas ?? 1), 'a drain can still evict one replica');
  t.ok(selects(pdb.spec?.selector, podLabels), 'the PDB selects the webhook pods');
  t.same(deployment.spec?.selector?.matchLabels, pdb.spec?.selector?.matchLabels, 'and only them');
});

t.test('base: Service ↔ Deployment ↔ webhook clientConfig', async (t) => {
  const { deployment, container, service, webhooks } = installation(base);
  const podLabels = deployment.spec?.template.metadata?.labels ?? {};
  t.equal(service.metadata?.namespace, deployment.metadata?.namespace);
  t.ok(selects({ matchLabels: service.spec?.selector ?? {} }, podLabels), 'the Service selects the webhook pods');
  t.same(service.spec?.selector, deployment.spec?.selector?.matchLabels, "with the Deployment's selector");
  const ports = service.spec?.ports ?? [];
  t.same(
    ports.map((p) => [p.name, p.port, p.targetPort, p.protocol]),
    [
      ['https', 443, 'https', 'TCP'],
      ['metrics', 8080, 'health', 'TCP'],
    ],
    'the admission port, and the metrics port for Prometheus (as the chart renders it)',
  );
  t.equal(containerPort([container], ports[0]?.targetPort as string), Number(flagValue(container.args ?? [], 'port')), 'https → --port');
  t.equal(containerPort([container], ports[1]?.targetPort as string), Number(flagValue(container.args ?? [], 'health-port')), 'metrics → --health-port');

  t.same(
    webhooks.map((w) => w.name),
    ['pods.akv-injector.io', 'namespaces.akv-injector.io'],
  );
  for (const webhook of webhooks) {
    t.same(
      webhook.clientConfig,
      {
        service: { name: service.metadata?.name, namespace: service.metadata?.namespace, path: '/mutate', port: ports[0]?.port },
      },
      `${webhook.name}: clientConfig is the Service, path /mutate`,
    );
    t.match(
      webhook,
      {
        failurePolicy: 'Fail',
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        timeoutSeconds: 5,
        reinvocationPolicy: 'IfNeeded',
        matchPolicy: 'Equivalent',
      },
      `${webhook.name}: policies`,
    );
    t.same(
      webhook.rules,
      [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
      `${webhook.name}: CREATE of pods only`,
    );
    t.equal(webhook.objectSelector, undefined);
  }
});

t.test('base: the NetworkPolicy selects exactly the webhook pods and opens exactly the admission and health ports', async (t) => {
  const { deployment, container, service } = installation(base);
  const policy = find<Policy>(base, 'NetworkPolicy');
  const args = container.args ?? [];
  t.equal(policy.metadata?.namespace, deployment.metadata?.namespace);
  t.same(policy.spec?.podSelector, { matchLabels: deployment.spec?.selector?.matchLabels }, "the Deployment's selector, nothing more");
  t.same([...(policy.spec?.policyTypes ?? [])].sort(), ['Egress', 'Ingress'], 'both directions: what is not allowed is denied');

  const admissionPort = containerPort([container], service.spec?.ports?.[0]?.targetPort as string);
  const healthPort = Number(flagValue(args, 'health-port'));
  const opened = (policy.spec?.ingress ?? []).flatMap((rule) => rule.ports ?? []);
  t.ok(opened.length > 0 && opened.every((p) => p.port !== undefined && p.endPort === undefined), 'every ingress rule names its ports');
  t.same(
    opened.map((p) => p.protocol),
    opened.map(() => 'TCP'),
  );
  t.same(
    opened.map((p) => containerPort([container], p.port as string | number)).sort(),
    [admissionPort, healthPort].sort(),
    "the Service's targetPort and --health-port",
  );
  t.equal(admissionPort, Number(flagValue(args, 'port')));
  // The namespace gets no policy selecting other pods.
  const other = { namespace: policy.metadata?.namespace as string, namespaceLabels: {}, labels: { app: 'debug' } };
  t.same(policiesFor([policy], other, 'Ingress'), [], 'another pod of the namespace is not selected');
});

t.test('base: the NetworkPolicy, connection by connection', async (t) => {
  const { deployment, container } = installation(base);
  const policy = find<Policy>(base, 'NetworkPolicy');
  const own = deployment.metadata?.namespace as string;
  const ownNamespace = find<KubeObject>(base, 'Namespace', own);
  const webhook: Endpoint = {
    ip: '10.244.1.10',
    pod: {
      namespace: own,
      namespaceLabels: namespaceLabels(own, ownNamespace.metadata.labels),
      labels: deployment.spec?.template.metadata?.labels ?? {},
      ports: container.ports ?? [],
    },
  };
  const pod = (namespace: string, labels: Record<string, string>, nsLabels: Record<string, string> = {}): Endpoint => ({
    ip: '10.244.2.20',
    pod: { namespace, namespaceLabels: namespaceLabels(namespace, nsLabels), labels },
  });
  const outside = (ip: string): Endpoint => ({ ip });
  const admission = Number(flagValue(container.args ?? [], 'port'));
  const health = Number(flagValue(container.args ?? [], 'health-port'));
  const coreDns = pod('kube-system', { 'k8s-app': 'kube-dns', 'pod-template-hash': '5d78c9869d' });
  const prometheus = pod('monitoring', { 'app.kubernetes.io/name': 'prometheus' }, { 'akv-injector.io/metrics': 'allowed' });

  const cases: Array<[string, Endpoint, Endpoint, number, Protocol, boolean]> = [
    // In: admission requests from wherever the API server's calls come from.
    ['a managed API server outside the cluster → admission', outside('20.50.1.2'), webhook, admission, 'TCP', true],
    ['the konnectivity agent (a kube-system pod) → admission', pod('kube-system', { app: 'konnectivity-agent' }), webhook, admission, 'TCP', true],
    ['a node address → admission', outside('10.224.0.4'), webhook, admission, 'TCP', true],
    ['anything → admission port over UDP', outside('20.50.1.2'), webhook, admission, 'UDP', false],
    ['anything → another port', outside('20.50.1.2'), webhook, 9443, 'TCP', false],
    // In: the health port only from the labeled namespace.
    ['Prometheus in a labeled namespace → /metrics', prometheus, webhook, health, 'TCP', true],
    ['Prometheus in an unlabeled namespace → /metrics', pod('monitoring', { 'app.kubernetes.io/name': 'prometheus' }), webhook, health, 'TCP', false],
    ['a namespace labeled with another value → /metrics', pod('monitoring', {}, { 'akv-injector.io/metrics': 'true' }), webhook, health, 'TCP', false],
    ["a pod of the webhook's namespace → /metrics", pod(own, { app: 'debug' }), webhook, health, 'TCP', false],
    ['an address outside the cluster → /metrics', outside('20.50.1.2'), webhook, health, 'TCP', false],
    ['Prometheus → the admission port', prometheus, webhook, admission, 'TCP', true],
    // Out: cluster DNS.
    ['→ CoreDNS over UDP', webhook, coreDns, 53, 'UDP', true],
    ['→ CoreDNS over TCP', webhook, coreDns, 53, 'TCP', true],
    ["→ CoreDNS's metrics port", webhook, coreDns, 9153, 'TCP', false],
    ['→ a kube-dns look-alike in another namespace', webhook, pod('shop', { 'k8s-app': 'kube-dns' }), 53, 'UDP', false],
    ['→ another kube-system pod on 53', webhook, pod('kube-system', { 'k8s-app': 'metrics-server' }), 53, 'UDP', false],
    ['→ a DNS server outside the cluster', webhook, outside('168.63.129.16'), 53, 'UDP', false],
    // Out: the API server, on 443 (AKS, managed) or 6443 (kubeadm), wherever it is.
    ['→ the API server of a managed cluster, 443', webhook, outside('20.50.1.2'), 443, 'TCP', true],
    ['→ the API server on a control-plane node, 6443', webhook, outside('172.18.0.2'), 6443, 'TCP', true],
    ['→ the API server port over UDP', webhook, outside('20.50.1.2'), 443, 'UDP', false],
    ['→ plain HTTP anywhere', webhook, outside('20.50.1.2'), 80, 'TCP', false],
    ["→ a pod's HTTP port", webhook, pod('shop', { app: 'checkout' }), 8080, 'TCP', false],
    ['→ Azure instance metadata', webhook, outside('169.254.169.254'), 80, 'TCP', false],
    // The documented trade-off: the API server's address is not known in advance, so 443 is open to any address.
    ['→ any address on 443 (the trade-off; narrow it with an ipBlock)', webhook, outside('52.1.2.3'), 443, 'TCP', true],
  ];
  for (const [name, from, to, port, protocol, allowed] of cases) {
    t.equal(connectionAllowed([policy], { from, to, port, protocol }), allowed, `${name}: ${allowed ? 'allowed' : 'denied'}`);
  }
});

t.test("base: the README's overlay narrows egress to the API server's address", async (t) => {
  const readme = path.join(MANIFESTS, 'README.md');
  const block = markdownYamlBlocks(readme).find((b) => b.includes('NetworkPolicy') && b.includes('ipBlock'));
  t.ok(block, 'the README has the overlay');
  const root = copyOfManifests(t);
  const overlay = path.join(root, 'manifests', 'overlays', 'api-server-only');
  mkdirSync(overlay, { recursive: true });
  writeFileSync(path.join(overlay, 'kustomization.yaml'), block as string);
  const objects = renderKustomization(overlay);
  validateAll(t, objects, 'narrowed');
  const policy = find<Policy>(objects, 'NetworkPolicy');
  const { deployment, container } = installation(objects);
  const webhook: Endpoint = {
    ip: '10.244.1.10',
    pod: {
      namespace: deployment.metadata?.namespace as string,
      namespaceLabels: {},
      labels: deployment.spec?.template.metadata?.labels ?? {},
      ports: container.ports ?? [],
    },
  };
  const apiServer = /cidr: ([\d.]+)\/32/.exec(block as string)?.[1] as string;
  t.ok(apiServer, 'the example names an address');
  t.equal(connectionAllowed([policy], { from: webhook, to: { ip: apiServer }, port: 443 }), true, 'the API server: allowed');
  t.equal(connectionAllowed([policy], { from: webhook, to: { ip: '52.1.2.3' }, port: 443 }), false, 'any other address on 443: denied');
  const coreDns: Endpoint = {
    ip: '10.244.0.5',
    pod: { namespace: 'kube-system', namespaceLabels: namespaceLabels('kube-system'), labels: { 'k8s-app': 'kube-dns' } },
  };
  t.equal(connectionAllowed([policy], { from: webhook, to: coreDns, port: 53, protocol: 'UDP' }), true, 'DNS still allowed');
});

t.test('base: which webhook the API server calls, for every kind of pod and namespace', async (t) => {
  const { deployment, webhooks } = installation(base);
  const own = deployment.metadata?.namespace as string;
  const [pods, namespaces] = webhooks;
  const pod = (annotations?: Record<string, string>): V1Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'app-', ...(annotations ? { annotations } : {}) },
    spec: { containers: [{ name: 'app' }] },
  });
  const cases: Array<{ name: string; pod: V1Pod; annotated: boolean }> = [
    { name: 'no annotations', pod: pod(), annotated: false },
    { name: 'empty annotations', pod: pod({}), annotated: false },
    { name: 'other annotations', pod: pod({ 'example.com/x': 'y', [ANNOTATIONS.vault]: 'kv' }), annotated: false },
    { name: 'inject "true"', pod: pod({ [ANNOTATIONS.inject]: 'true' }), annotated: true },
    { name: 'inject "false"', pod: pod({ [ANNOTATIONS.inject]: 'false' }), annotated: true },
    { name: 'inject ""', pod: pod({ [ANNOTATIONS.inject]: '' }), annotated: true },
  ];
  const enabled = { [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE };
  for (const c of cases) {
    const called = (labels: Record<string, string>): string[] => webhooks.filter((w) => webhookCalled(w, c.pod, labels)).map((w) => w.name);
    // The two conditions are each other's negation: exactly one holds for every pod.
    const conditions = webhooks.map((w) => (w.matchConditions ?? []).every((m) => evaluateCel(m.expression, { object: c.pod }) === true));
    t.same(conditions, [c.annotated, !c.annotated], `${c.name}: matchConditions are disjoint and cover every pod`);

    t.same(called(namespaceLabels('shop')), c.annotated ? [pods?.name] : [], `${c.name}, unlabeled namespace`);
    t.same(called(namespaceLabels('shop', enabled)), [c.annotated ? pods?.name : namespaces?.name], `${c.name}, labeled namespace: exactly one webhook`);
    t.same(called(namespaceLabels('shop', { [NAMESPACE_LABEL]: 'disabled' })), c.annotated ? [pods?.name] : [], `${c.name}, label not "enabled"`);
    for (const excluded of [...NEVER_INJECTED, own]) {
      t.same(called(namespaceLabels(excluded, enabled)), [], `${c.name}: never in ${excluded}, labeled or not`);
    }
  }
  // The webhook's own pods are never sent to it: no deadlock when all replicas are down.
  const ownPod = {
    ...pod({ [ANNOTATIONS.inject]: 'true' }),
    metadata: { ...deployment.spec?.template.metadata, annotations: { [ANNOTATIONS.inject]: 'true' } },
  };
  t.same(
    webhooks.filter((w) => webhookCalled(w, ownPod, namespaceLabels(own))),
    [],
  );
  for (const webhook of webhooks) {
    const exclusion = webhook.namespaceSelector?.matchExpressions?.find((e) => e.key === 'kubernetes.io/metadata.name');
    t.same(exclusion, { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [...NEVER_INJECTED, own] }, `${webhook.name}: exclusion`);
  }
  t.same(namespaces?.namespaceSelector?.matchLabels, enabled);
});

t.test('the NetworkPolicy evaluator behaves like the NetworkPolicy API', async (t) => {
  const pod = (namespace: string, labels: Record<string, string>, ports: V1ContainerPort[] = []): Endpoint => ({
    ip: '10.244.3.30',
    pod: { namespace, namespaceLabels: namespaceLabels(namespace, namespace === 'monitoring' ? { team: 'ops' } : {}), labels, ports },
  });
  const api = pod('shop', { app: 'api' }, [
    { name: 'http', containerPort: 8080 },
    { name: 'dns', containerPort: 5353, protocol: 'UDP' },
  ]);
  const web = pod('shop', { app: 'web' });
  const scraper = pod('monitoring', { app: 'prometheus' });
  const policy = (spec: NonNullable<Policy['spec']>, namespace = 'shop'): Policy => ({ metadata: { name: 'p', namespace }, spec });
  const denyIngress = policy({ podSelector: { matchLabels: { app: 'api' } }, policyTypes: ['Ingress'] });
  const cases: Array<[string, Policy[], Endpoint, Endpoint, number, Protocol | undefined, boolean]> = [
    ['no policy: open', [], web, api, 8080, undefined, true],
    ['selected with no ingress rules: closed', [denyIngress], web, api, 8080, undefined, false],
    ['an Ingress-only policy leaves egress open', [denyIngress], api, web, 80, undefined, true],
    ['a policy of another namespace does not apply', [policy({ podSelector: {}, policyTypes: ['Ingress'] }, 'other')], web, api, 8080, undefined, true],
    ['a rule without peers or ports: everything', [policy({ podSelector: {}, ingress: [{}] })], scraper, api, 1, undefined, true],
    [
      "podSelector alone: the policy's namespace",
      [policy({ podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })],
      scraper,
      api,
      8080,
      undefined,
      false,
    ],
    [
      'podSelector alone: a pod of the namespace',
      [policy({ podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }] }] })],
      web,
      api,
      8080,
      undefined,
      true,
    ],
    [
      'namespaceSelector and podSelector in one peer: both',
      [
        policy({
          podSelector: {},
          ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'ops' } }, podSelector: { matchLabels: { app: 'grafana' } } }] }],
        }),
      ],
      scraper,
      api,
      8080,
      undefined,
      false,
    ],
    [
      'two peers: either',
      [
        policy({
          podSelector: {},
          ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'ops' } } }, { podSelector: { matchLabels: { app: 'grafana' } } }] }],
        }),
      ],
      scraper,
      api,
      8080,
      undefined,
      true,
    ],
    [
      "a pod is no ipBlock's outside address",
      [policy({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '192.168.0.0/16' } }] }] })],
      web,
      api,
      8080,
      undefined,
      false,
    ],
    ['ipBlock', [policy({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }] })], { ip: '10.1.2.3' }, api, 8080, undefined, true],
    [
      'ipBlock except',
      [policy({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }] }] })],
      { ip: '10.1.2.3' },
      api,
      8080,
      undefined,
      false,
    ],
    [
      'a selector peer never matches an outside address',
      [policy({ podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] })],
      { ip: '10.1.2.3' },
      api,
      8080,
      undefined,
      false,
    ],
    ['a port is TCP unless it says otherwise', [policy({ podSelector: {}, ingress: [{ ports: [{ port: 8080 }] }] })], web, api, 8080, 'UDP', false],
    ['a port range', [policy({ podSelector: {}, ingress: [{ ports: [{ port: 8000, endPort: 8100 }] }] })], web, api, 8080, undefined, true],
    ['past a port range', [policy({ podSelector: {}, ingress: [{ ports: [{ port: 8000, endPort: 8079 }] }] })], web, api, 8080, undefined, false],
    ["a named port: the destination container's", [policy({ podSelector: {}, ingress: [{ ports: [{ port: 'http' }] }] })], web, api, 8080, undefined, true],
    ['a named port of another number', [policy({ podSelector: {}, ingress: [{ ports: [{ port: 'http' }] }] })], web, api, 9090, undefined, false],
    ['a named UDP port', [policy({ podSelector: {}, ingress: [{ ports: [{ port: 'dns', protocol: 'UDP' }] }] })], web, api, 5353, 'UDP', true],
    ['a protocol without a port: all its ports', [policy({ podSelector: {}, ingress: [{ ports: [{ protocol: 'UDP' }] }] })], web, api, 5353, 'UDP', true],
    [
      'without policyTypes, egress rules make it an Egress policy',
      [policy({ podSelector: { matchLabels: { app: 'web' } }, egress: [{ ports: [{ port: 53, protocol: 'UDP' }] }] })],
      web,
      api,
      8080,
      undefined,
      false,
    ],
    [
      'egress: the rule that matches',
      [
        policy({
          podSelector: { matchLabels: { app: 'web' } },
          policyTypes: ['Egress'],
          egress: [{ to: [{ podSelector: { matchLabels: { app: 'api' } } }], ports: [{ port: 'http' }] }],
        }),
      ],
      web,
      api,
      8080,
      undefined,
      true,
    ],
    [
      'policies add up',
      [denyIngress, policy({ podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ podSelector: {} }] }] })],
      web,
      api,
      8080,
      undefined,
      true,
    ],
    [
      'both ends must allow it',
      [policy({ podSelector: {}, policyTypes: ['Egress'] }), policy({ podSelector: {}, ingress: [{}] })],
      web,
      api,
      8080,
      undefined,
      false,
    ],
  ];
  for (const [name, policies, from, to, port, protocol, allowed] of cases) {
    t.equal(connectionAllowed(policies, { from, to, port, ...(protocol ? { protocol } : {}) }), allowed, name);
  }
  t.throws(
    () =>
      connectionAllowed([policy({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0' } }] }] })], {
        from: { ip: '10.0.0.1' },
        to: api,
        port: 1,
      }),
    /not a CIDR/,
  );
});

t.test('the CEL subset evaluator behaves like CEL', async (t) => {
  const withAnnotations = { object: { metadata: { annotations: { a: '1' } } } };
  const without = { object: { metadata: {} } };
  t.equal(evaluateCel("'a' in object.metadata.annotations", withAnnotations), true);
  t.type(evaluateCel("'a' in object.metadata.annotations", without), CelError, 'a missing field is an error');
  t.equal(evaluateCel("has(object.metadata.annotations) && 'a' in object.metadata.annotations", without), false, 'false && error is false');
  t.equal(evaluateCel("'a' in object.metadata.annotations && has(object.metadata.annotations)", without), false, 'error && false is false');
  t.equal(evaluateCel("!has(object.metadata.annotations) || !('a' in object.metadata.annotations)", without), true);
  t.type(evaluateCel("!('a' in object.metadata.annotations)", without), CelError);
  t.throws(() => evaluateCel('size(object.metadata.annotations) > 0', withAnnotations), /subset/);
});

t.test('overlay cert-manager: renders, and cert-manager issues the Secret the webhook mounts', async (t) => {
  const objects = renderKustomization(CERT_MANAGER);
  validateAll(t, objects, 'cert-manager');
  t.same(referenceProblems(objects, { secrets: ['akv-injector-tls'] }), []);
  for (const object of base) {
    const rendered = objects.find((o) => resourceId(o) === resourceId(object));
    if (object.kind === 'MutatingWebhookConfiguration') continue;
    t.same(rendered, object, `${resourceId(object)} unchanged from the base`);
  }
  const { deployment, spec, service, configuration, webhooks } = installation(objects);
  const namespace = deployment.metadata?.namespace as string;
  const tlsSecret = spec.volumes?.find((v) => v.secret !== undefined)?.secret?.secretName;

  type Certificate = KubeObject & {
    spec: { secretName: string; dnsNames?: string[]; isCA?: boolean; usages?: string[]; issuerRef: { name: string; kind?: string } };
  };
  type Issuer = KubeObject & { spec: { ca?: { secretName: string }; selfSigned?: object } };
  const certificates = objects.filter((o) => o.kind === 'Certificate') as Certificate[];
  const issuers = objects.filter((o) => o.kind === 'Issuer') as Issuer[];
  const issuerOf = (certificate: Certificate): Issuer | undefined => {
    t.equal(certificate.spec.issuerRef.kind ?? 'Issuer', 'Issuer', `${certificate.metadata.name}: a namespaced Issuer`);
    return issuers.find((i) => i.metadata.name === certificate.spec.issuerRef.name && i.metadata.namespace === certificate.metadata.namespace);
  };

  const serving = certificates.find((c) => c.spec.secretName === tlsSecret);
  t.ok(serving, `a Certificate writes the Secret ${tlsSecret}`);
  if (serving === undefined) return;
  t.equal(serving.metadata.namespace, namespace, "in the webhook's namespace");
  t.same([...(serving.spec.dnsNames ?? [])].sort(), serviceDnsNames(service.metadata?.name as string, namespace).sort(), "dnsNames are the Service's names");
  t.ok(serving.spec.usages?.includes('server auth'));
  t.not(serving.spec.isCA, true);

  // serving ← CA Issuer ← CA Certificate ← self-signed Issuer
  const caIssuer = issuerOf(serving);
  t.ok(caIssuer?.spec.ca, 'the serving certificate is signed by a CA Issuer');
  const caCertificate = certificates.find((c) => c.spec.secretName === caIssuer?.spec.ca?.secretName && c.metadata.namespace === namespace);
  t.equal(caCertificate?.spec.isCA, true, "whose Secret is a CA Certificate's");
  t.ok(caCertificate && issuerOf(caCertificate)?.spec.selfSigned, 'issued by a self-signed Issuer');
  const hours = (c: Certificate | undefined, field: 'duration' | 'renewBefore'): number =>
    goHours((c?.spec as Record<string, unknown> | undefined)?.[field], field, []);
  t.ok(hours(caCertificate, 'renewBefore') > hours(serving, 'duration'), 'the CA is renewed long before it could outlive a serving certificate');

  t.equal(configuration.metadata?.annotations?.['cert-manager.io/inject-ca-from'], `${serving.metadata.namespace}/${serving.metadata.name}`);
  for (const webhook of webhooks) t.equal(webhook.clientConfig.caBundle, undefined, `${webhook.name}: caBundle left to the CA injector`);
  t.same(configuration.webhooks, installation(base).webhooks, "the webhooks themselves are the base's");
});

t.test('the cert-manager checks refuse what cert-manager would', async (t) => {
  const objects = renderKustomization(CERT_MANAGER);
  const serving = objects.find((o) => o.kind === 'Certificate' && !(o.spec as { isCA?: boolean }).isCA);
  const issuer = objects.find((o) => o.kind === 'Issuer');
  if (serving === undefined || issuer === undefined) throw new Error('the overlay has a serving Certificate and an Issuer');
  const spec = serving.spec as Record<string, unknown>;
  const cases: Array<[string, KubeObject, RegExp]> = [
    ['a usage cert-manager does not know', { ...serving, spec: { ...spec, usages: ['server auth', 'teleport'] } }, /spec\/usages\/1/],
    ['dnsNames as a string', { ...serving, spec: { ...spec, dnsNames: 'akv-injector' } }, /spec\/dnsNames must be array/],
    ['no secretName', { ...serving, spec: { ...spec, secretName: undefined } }, /secretName/],
    ['a misspelt field', { ...serving, spec: { ...spec, dnsName: ['x'] } }, /unknown spec field dnsName/],
    ['renewBefore past the duration', { ...serving, spec: { ...spec, duration: '24h', renewBefore: '48h' } }, /renewBefore must be less/],
    ['no identity', { ...serving, spec: { secretName: 's', issuerRef: { name: 'i' } } }, /at least one of/],
    ['an ECDSA key of 2048 bits', { ...serving, spec: { ...spec, privateKey: { algorithm: 'ECDSA', size: 2048 } } }, /privateKey.size 2048/],
    ['two issuer types', { ...issuer, spec: { selfSigned: {}, ca: { secretName: 'x' } } }, /exactly one issuer type/],
    ['a CA issuer without its Secret', { ...issuer, spec: { ca: {} } }, /spec\/ca must have required property secretName/],
  ];
  t.same(schemaProblems(serving), [], "the overlay's serving Certificate passes");
  for (const [name, object, problem] of cases) t.match(schemaProblems(JSON.parse(JSON.stringify(object)) as KubeObject).join('\n'), problem, name);
});

t.test('overlay self-signed: needs the generated Secret and caBundle, and certs makes a working set', async (t) => {
  const kustomization = parseYamlDocuments(readFileSync(path.join(SELF_SIGNED, 'kustomization.yaml'), 'utf8'), 'self-signed')[0] as { resources: string[] };
  t.ok(kustomization.resources.includes('tls-secret.yaml'), 'the kustomization references the generated Secret');

  const root = copyOfManifests(t);
  const overlay = path.join(root, 'manifests', 'overlays', 'self-signed');
  t.throws(
    () => renderKustomization(overlay),
    /(tls-secret|ca-bundle)\.yaml: no such file or directory/,
    'without the certs command, the build fails naming the file',
  );

  const { deployment, spec, service } = installation(base);
  const namespace = deployment.metadata?.namespace as string;
  const secretName = spec.volumes?.find((v) => v.secret !== undefined)?.secret?.secretName as string;
  const generated = await writeCerts(overlay, service.metadata?.name as string, namespace, secretName);

  const objects = renderKustomization(overlay);
  validateAll(t, objects, 'self-signed');
  t.same(referenceProblems(objects), [], 'the TLS Secret is part of the set');
  const secret = find<V1Secret>(objects, 'Secret', secretName);
  t.equal(secret.metadata?.namespace, namespace);
  t.equal(secret.type, 'kubernetes.io/tls');
  t.same(Object.keys(secret.data ?? {}).sort(), ['ca.crt', 'tls.crt', 'tls.key']);

  const ca = new X509Certificate(generated.ca);
  const cert = new X509Certificate(Buffer.from(secret.data?.['tls.crt'] as string, 'base64'));
  t.ok(cert.verify(ca.publicKey), 'the serving certificate is signed by the CA');
  t.ok(cert.checkHost(`${service.metadata?.name}.${namespace}.svc`), 'for the name the API server calls');
  const { webhooks } = installation(objects);
  t.equal(webhooks.length, 2);
  for (const webhook of webhooks) {
    t.equal(Buffer.from(webhook.clientConfig.caBundle as string, 'base64').toString(), generated.ca, `${webhook.name}: caBundle is ca.crt`);
  }
  t.same(
    webhooks.map((w) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle: undefined } })),
    installation(base).webhooks.map((w) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle: undefined } })),
    "otherwise the base's webhooks",
  );
});

t.test('overlay self-signed: generated keys and certificates are git-ignored', async (t) => {
  const hasGit = (() => {
    try {
      execFileSync('git', ['rev-parse', '--is-inside-work-tree'], { cwd: REPO, stdio: 'pipe' });
      return true;
    } catch {
      return false;
    }
  })();
  if (!hasGit) {
    t.comment('not a git work tree: reading .gitignore');
    const lines = readFileSync(path.join(SELF_SIGNED, '.gitignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    for (const name of GENERATED) t.ok(lines.includes(name), `${name} listed`);
    return;
  }
  for (const name of GENERATED) {
    const file = path.relative(REPO, path.join(SELF_SIGNED, name));
    t.doesNotThrow(() => execFileSync('git', ['check-ignore', '--no-index', '-q', file], { cwd: REPO, stdio: 'pipe' }), `${file} is ignored`);
  }
  const tracked = execFileSync('git', ['ls-files', path.relative(REPO, SELF_SIGNED)], { cwd: REPO, encoding: 'utf8' }).split('\n');
  for (const name of GENERATED)
    t.notOk(
      tracked.some((f) => f.endsWith(`/${name}`)),
      `${name} is not committed`,
    );
});

// ---------------------------------------------------------------------------------------------------------
// Examples

// A CoreDNS pod as AKS and kubeadm label it.
const CORE_DNS: Endpoint = {
  ip: '10.244.0.10',
  pod: { namespace: 'kube-system', namespaceLabels: namespaceLabels('kube-system'), labels: { 'k8s-app': 'kube-dns' } },
};
const exampleDirs = readdirSync(EXAMPLES)
  .filter((name) => statSync(path.join(EXAMPLES, name)).isDirectory())
  .sort();
const settings: WebhookSettings = { image: IMAGE, cloud: CLOUDS.AzurePublicCloud, namespace: installation(base).deployment.metadata?.namespace as string };

t.test('the examples are there', async (t) => {
  t.same(exampleDirs, ['certificate', 'namespace-wide', 'secret-provider-class', 'workload-identity']);
  for (const dir of exampleDirs) t.ok(existsSync(path.join(EXAMPLES, dir, 'README.md')), `${dir}/README.md`);
});

for (const dir of exampleDirs) {
  t.test(`example ${dir}`, async (t) => {
    const root = path.join(EXAMPLES, dir);
    const objects = walk(root, isYaml).flatMap(readObjects);
    const text = walk(root, (f) => isYaml(f) || isMarkdown(f))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    validateAll(t, objects, dir);
    for (const file of walk(root, isMarkdown)) validateAll(t, markdownManifests(file), relative(file));
    t.same(referenceProblems(objects), [], 'references resolve within the example');
    const ids = objects.map(resourceId);
    t.equal(new Set(ids).size, ids.length, 'no object twice');

    const namespaces = objects.filter((o) => o.kind === 'Namespace');
    for (const namespace of namespaces) {
      const annotations = Object.keys(namespace.metadata.annotations ?? {}).filter((k) => k.startsWith('akv-injector.io/'));
      for (const key of annotations) t.ok(USER_ANNOTATIONS.has(key), `namespace annotation ${key} is one of DESIGN.md's`);
      const objectsAnnotation = namespace.metadata.annotations?.[ANNOTATIONS.objects];
      if (objectsAnnotation !== undefined) t.same(objectListProblems(objectsAnnotation, 'namespace objects'), []);
    }
    const lookups = memoryLookups({
      namespaces: namespaces as never,
      serviceAccounts: objects.filter((o) => o.kind === 'ServiceAccount') as never,
      secretProviderClasses: objects.filter((o) => o.kind === 'SecretProviderClass') as unknown as SecretProviderClass[],
    });

    const deployments = objects.filter((o) => o.kind === 'Deployment') as unknown as V1Deployment[];
    t.ok(deployments.length > 0, 'has a Deployment');
    for (const deployment of deployments) {
      const namespace = deployment.metadata?.namespace as string;
      const template = deployment.spec?.template;
      const name = `${namespace}/${deployment.metadata?.name}`;
      const annotations = template?.metadata?.annotations ?? {};
      t.same(
        Object.keys(deployment.metadata?.annotations ?? {}).filter((k) => k.startsWith('akv-injector.io/')),
        [],
        `${name}: akv-injector annotations go on the pod template`,
      );
      for (const key of Object.keys(annotations).filter((k) => k.startsWith('akv-injector.io/')))
        t.ok(USER_ANNOTATIONS.has(key), `${name}: ${key} is one of DESIGN.md's`);
      if (annotations[ANNOTATIONS.objects] !== undefined) t.same(objectListProblems(annotations[ANNOTATIONS.objects] as string, `${name} objects`), []);

      // What the webhook does with it: called by the API server, then the real mutate().
      const pod: V1Pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { ...structuredClone(template?.metadata), generateName: `${deployment.metadata?.name}-`, namespace },
        spec: structuredClone(template?.spec) as V1PodSpec,
      };
      const namespaceObject = namespaces.find((n) => n.metadata.name === namespace);
      const called = installation(base).webhooks.filter((w) => webhookCalled(w, pod, namespaceLabels(namespace, namespaceObject?.metadata.labels ?? {})));
      const optedOut = annotations[ANNOTATIONS.inject] === 'false';
      t.equal(called.length, 1, `${name}: the API server calls one webhook (${called.map((w) => w.name).join(', ')})`);
      const request: AdmissionRequest = {
        uid: `example-${dir}`,
        kind: { group: '', version: 'v1', kind: 'Pod' },
        resource: { group: '', version: 'v1', resource: 'pods' },
        namespace,
        operation: 'CREATE',
        object: pod,
      };
      const result = await mutate(request, settings, lookups);
      t.equal(result.outcome, optedOut ? 'skipped' : 'injected', `${name}: ${result.reason} ${result.response.status?.message ?? ''}`);
      t.same(result.response.warnings ?? [], [], `${name}: no warnings`);
      if (optedOut || result.response.patch === undefined) continue;

      const operations = JSON.parse(Buffer.from(result.response.patch, 'base64').toString('utf8')) as Operation[];
      const injected = fastJsonPatch.applyPatch(structuredClone(pod), operations, true, false).newDocument;
      const injectedSpec = injected.spec as V1PodSpec;
      t.same(schemaProblems({ ...injected, metadata: { ...injected.metadata, name: 'x' } } as KubeObject), [], `${name}: the injected pod is valid`);
      if (namespaceObject?.metadata.labels?.['pod-security.kubernetes.io/enforce'] === 'restricted') {
        t.same(podSecurityViolations(injected as V1Pod, 'restricted'), [], `${name}: the injected pod meets the restricted standard its namespace enforces`);
      }
      t.ok(
        injectedSpec.initContainers?.some((c) => c.name === INIT_CONTAINER),
        `${name}: init container ${INIT_CONTAINER}`,
      );
      t.same(
        injectedSpec.volumes
          ?.map((v) => v.name)
          .filter((v) => v === TOKEN_VOLUME || v === SECRETS_VOLUME)
          .sort(),
        [SECRETS_VOLUME, TOKEN_VOLUME].sort(),
      );

      // Where the example restricts egress, the init container still reaches DNS, the authority and the vault it is given.
      const policies = objects.filter((o) => o.kind === 'NetworkPolicy') as unknown as Policy[];
      const selfPod: PodEndpoint = {
        namespace,
        namespaceLabels: namespaceLabels(namespace, namespaceObject?.metadata.labels),
        labels: template?.metadata?.labels ?? {},
      };
      const self: Endpoint = { ip: '10.244.5.50', pod: selfPod };
      if (policiesFor(policies, selfPod, 'Egress').length > 0) {
        const env = (variable: string): string =>
          injectedSpec.initContainers?.find((c) => c.name === INIT_CONTAINER)?.env?.find((e) => e.name === variable)?.value ?? '';
        t.ok(connectionAllowed(policies, { from: self, to: CORE_DNS, port: 53, protocol: 'UDP' }), `${name}: the init container reaches cluster DNS`);
        for (const [what, variable, ip] of [
          ['Entra ID', 'AZURE_AUTHORITY_HOST', '20.190.160.1'],
          ['the vault', 'AKV_INJECTOR_VAULT_URL', '52.1.2.3'],
        ] as const) {
          const url = new URL(env(variable));
          const port = Number(url.port || 443);
          t.ok(
            connectionAllowed(policies, { from: self, to: { ip }, port }),
            `${name}: the init container reaches ${what} (${url.host}:${port}, at a public address)`,
          );
        }
      }

      // The identity the federated credential must name is written down next to the example.
      const account = template?.spec?.serviceAccountName ?? 'default';
      t.ok(text.includes(`system:serviceaccount:${namespace}:${account}`), `${name}: the federated credential subject is documented`);
      // Files the app is told to read are files the objects write.
      const mountPath = annotations[ANNOTATIONS.mountPath] ?? namespaceObject?.metadata.annotations?.[ANNOTATIONS.mountPath] ?? '/mnt/secrets-store';
      const spc = objects.find((o) => o.kind === 'SecretProviderClass' && o.metadata.name === annotations[ANNOTATIONS.secretProviderClass]) as
        { spec?: { parameters?: Record<string, string> } } | undefined;
      const listText = annotations[ANNOTATIONS.objects] ?? spc?.spec?.parameters?.objects ?? namespaceObject?.metadata.annotations?.[ANNOTATIONS.objects] ?? '';
      const written = new Set(
        objectList(listText)
          .flatMap(outputPaths)
          .map((p) => `${mountPath}/${p}`),
      );
      const escaped = mountPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const mentioned = [...text.matchAll(new RegExp(`${escaped}/([A-Za-z0-9._/-]*[A-Za-z0-9_-])`, 'g'))].map((m) => m[0]);
      for (const file of new Set(mentioned)) t.ok(written.has(file), `${name}: ${file} is written by an object`);
    }
  });
}

t.test('example workload-identity: egress denied by default, the checkout pods reach only DNS and public HTTPS', async (t) => {
  const root = path.join(EXAMPLES, 'workload-identity');
  const objects = walk(root, isYaml).flatMap(readObjects);
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy') as unknown as Policy[];
  const namespace = find<KubeObject>(objects, 'Namespace');
  const labels = find<V1Deployment>(objects, 'Deployment').spec?.template.metadata?.labels ?? {};
  const pod = (podLabels: Record<string, string>): Endpoint => ({
    ip: '10.244.5.50',
    pod: { namespace: namespace.metadata.name, namespaceLabels: namespaceLabels(namespace.metadata.name, namespace.metadata.labels), labels: podLabels },
  });
  const checkout = pod(labels);
  const cases: Array<[string, Endpoint, Endpoint, number, Protocol, boolean]> = [
    ['→ cluster DNS over TCP', checkout, CORE_DNS, 53, 'TCP', true],
    ['→ Entra ID', checkout, { ip: '40.126.0.1' }, 443, 'TCP', true],
    ['→ a DNS server outside the cluster', checkout, { ip: '8.8.8.8' }, 53, 'UDP', false],
    ['→ plain HTTP outside', checkout, { ip: '52.1.2.3' }, 80, 'TCP', false],
    ['→ instance metadata', checkout, { ip: '169.254.169.254' }, 80, 'TCP', false],
    ['→ a private address on 443 (a private endpoint needs its own ipBlock)', checkout, { ip: '10.1.2.3' }, 443, 'TCP', false],
    [
      '→ a pod of another namespace',
      checkout,
      { ip: '10.244.9.9', pod: { namespace: 'payments', namespaceLabels: namespaceLabels('payments'), labels: { app: 'api' } } },
      443,
      'TCP',
      false,
    ],
    ['another pod of the namespace → Entra ID', pod({ app: 'worker' }), { ip: '40.126.0.1' }, 443, 'TCP', false],
  ];
  for (const [name, from, to, port, protocol, allowed] of cases) {
    t.equal(connectionAllowed(policies, { from, to, port, protocol }), allowed, `${name}: ${allowed ? 'allowed' : 'denied'}`);
  }
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  t.match(readme, /networkpolicy\.yaml/, 'the README explains the policy');
});

t.test('example workload-identity: the az commands match the manifests', async (t) => {
  const readme = readFileSync(path.join(EXAMPLES, 'workload-identity', 'README.md'), 'utf8');
  const account = readObjects(path.join(EXAMPLES, 'workload-identity', 'serviceaccount.yaml'))[0] as KubeObject;
  t.match(readme, /az identity create/);
  t.match(readme, /az identity federated-credential create[\s\S]*--issuer "\$OIDC_ISSUER"[\s\S]*--audience api:\/\/AzureADTokenExchange/);
  t.match(readme, `--subject system:serviceaccount:${account.metadata.namespace}:${account.metadata.name}`);
  t.match(readme, /az role assignment create[\s\S]*--role "Key Vault Secrets User"/);
  t.ok(account.metadata.annotations?.['azure.workload.identity/client-id'], 'the ServiceAccount names the identity');
});
