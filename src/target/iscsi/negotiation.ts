/**
 * Operational parameter negotiation, target side (RFC 7143 6.2, 13): the key table (type,
 * default, range, when a key may be sent and by whom), the target's configured offer, and a
 * {@link Negotiator} that answers the initiator's keys over one or more Login (or Text) requests
 * and yields the {@link NegotiatedParams} the connection runs with.
 *
 * Pure logic: no sockets, no clocks. Failures come back as values, never as exceptions.
 *
 * How each key type is answered (the target is the acceptor of the initiator's offers):
 *   list         the first value of the initiator's list that we support, else "Reject" (6.2.1)
 *   min / max    the smaller / larger of the offer and our value; out of range: "Reject" (6.2.2)
 *   AND / OR     the Boolean function of the offer and our value; not Yes/No: "Reject" (6.2.2)
 *   declarative  no answer; the target declares its own MaxRecvDataSegmentLength (13.12)
 *   unknown      "NotUnderstood" (6.2), including the X- private (13.22) and X# public
 *                extension keys
 *   irrelevant   "Irrelevant" (6.2): the "Irrelevant when" column of 13 (discovery sessions,
 *                FirstBurstLength with InitialR2T=Yes and ImmediateData=No)
 * Answers are always sent, also where 6.2.2 makes them optional (AND offered No, OR offered Yes).
 */
import { ArgumentError } from '../../errors';
import type { TextPair } from './text';

export type Digest = 'None' | 'CRC32C';
export type SessionType = 'Normal' | 'Discovery';

/** RFC 7143 13.12-13.14: data segment and burst lengths range from 512 to 2^24 - 1. */
export const MAX_DATA_LENGTH = 16777215;

/** RFC 7143 13.12: MaxRecvDataSegmentLength when not declared. */
export const DEFAULT_MAX_RECV_DATA_SEGMENT_LENGTH = 8192;

/** RFC 7143 4.2.7.1: an iSCSI name is at most 223 bytes. */
export const MAX_ISCSI_NAME_LENGTH = 223;

/** The target's configured offer. Defaults in {@link DEFAULT_TARGET_PARAMS}. */
export interface TargetParams {
  /** Ours, declared to the initiator: the largest data segment we accept (13.12). */
  maxRecvDataSegmentLength: number;
  maxBurstLength: number;
  /** Must not exceed maxBurstLength (13.14). */
  firstBurstLength: number;
  /** Yes: we want an R2T before unsolicited data (13.10, OR). */
  initialR2T: boolean;
  /** Yes: we accept immediate data (13.11, AND). */
  immediateData: boolean;
  maxOutstandingR2T: number;
  dataPDUInOrder: boolean;
  dataSequenceInOrder: boolean;
  defaultTime2Wait: number;
  defaultTime2Retain: number;
  /** Only 0 is implemented (13.20). */
  errorRecoveryLevel: number;
  /** Only 1 is implemented (13.2). */
  maxConnections: number;
  /**
   * Digests we accept, in our order of preference. The initiator's order decides when it offers
   * (6.2.1); ours is used when we must propose (when None is not acceptable to us).
   */
  headerDigest: readonly Digest[];
  dataDigest: readonly Digest[];
}

export const DEFAULT_TARGET_PARAMS: Readonly<TargetParams> = Object.freeze({
  maxRecvDataSegmentLength: 262144,
  maxBurstLength: 262144,
  firstBurstLength: 65536,
  initialR2T: true,
  immediateData: true,
  maxOutstandingR2T: 1,
  dataPDUInOrder: true,
  dataSequenceInOrder: true,
  defaultTime2Wait: 2,
  defaultTime2Retain: 20,
  errorRecoveryLevel: 0,
  maxConnections: 1,
  headerDigest: Object.freeze(['None', 'CRC32C'] as Digest[]),
  dataDigest: Object.freeze(['None', 'CRC32C'] as Digest[]),
});

/** What the connection runs with once login completes. */
export interface NegotiatedParams {
  headerDigest: Digest;
  dataDigest: Digest;
  /** Ours, as the initiator knows it: the largest data segment it may send us (8192 if we never
   *  declared ours, i.e. the operational stage was skipped). */
  targetMaxRecvDataSegmentLength: number;
  /** The initiator's declaration: the largest data segment we may send it per Data-In, Text or
   *  Login response (default 8192). */
  initiatorMaxRecvDataSegmentLength: number;
  maxBurstLength: number;
  /** Never above maxBurstLength. */
  firstBurstLength: number;
  initialR2T: boolean;
  immediateData: boolean;
  maxOutstandingR2T: number;
  dataPDUInOrder: boolean;
  dataSequenceInOrder: boolean;
  defaultTime2Wait: number;
  defaultTime2Retain: number;
  errorRecoveryLevel: number;
  maxConnections: number;
}

export type KeyType = 'list' | 'min' | 'max' | 'and' | 'or' | 'declarative' | 'security' | 'obsolete';

/**
 * When a key may be sent (RFC 7143 13, "Use"): IO at login only, LO in the leading login only,
 * ALL at login and in full feature phase, FFPO in full feature phase only, SEC in the security
 * negotiation stage only.
 */
export type KeyUse = 'IO' | 'LO' | 'ALL' | 'FFPO' | 'SEC';

export interface KeyDefinition {
  readonly type: KeyType;
  readonly use: KeyUse;
  readonly sender: 'initiator' | 'target' | 'both';
  readonly scope: 'session' | 'connection';
  /** Declarative keys usable in any stage, the security stage included. */
  readonly anyStage: boolean;
  /** "Irrelevant when: SessionType=Discovery". */
  readonly irrelevantInDiscovery: boolean;
  readonly default?: string;
  readonly range?: readonly [number, number];
  /** The values we know for list and enumerated keys. */
  readonly values?: readonly string[];
  /** Our answer to an obsoleted key (13.25). */
  readonly obsoleteAnswer?: string;
  readonly section: string;
}

function def(d: Partial<KeyDefinition> & Pick<KeyDefinition, 'type' | 'use' | 'section'>): KeyDefinition {
  return {
    sender: 'both',
    scope: 'session',
    anyStage: false,
    irrelevantInDiscovery: false,
    ...d,
  };
}

const LENGTH_RANGE = [512, MAX_DATA_LENGTH] as const;

/** The keys of RFC 7143 12 and 13 this target knows. Anything else is answered NotUnderstood. */
export const KEYS: ReadonlyMap<string, KeyDefinition> = new Map<string, KeyDefinition>([
  ['AuthMethod', def({ type: 'security', use: 'SEC', scope: 'connection', default: 'None', section: '12' })],
  ['CHAP_A', def({ type: 'security', use: 'SEC', scope: 'connection', section: '12.1.3' })],
  ['CHAP_I', def({ type: 'security', use: 'SEC', scope: 'connection', section: '12.1.3' })],
  ['CHAP_C', def({ type: 'security', use: 'SEC', scope: 'connection', section: '12.1.3' })],
  ['CHAP_N', def({ type: 'security', use: 'SEC', scope: 'connection', section: '12.1.3' })],
  ['CHAP_R', def({ type: 'security', use: 'SEC', scope: 'connection', section: '12.1.3' })],
  ['HeaderDigest', def({ type: 'list', use: 'IO', scope: 'connection', default: 'None', values: ['CRC32C', 'None'], section: '13.1' })],
  ['DataDigest', def({ type: 'list', use: 'IO', scope: 'connection', default: 'None', values: ['CRC32C', 'None'], section: '13.1' })],
  ['MaxConnections', def({ type: 'min', use: 'LO', irrelevantInDiscovery: true, default: '1', range: [1, 65535], section: '13.2' })],
  ['SendTargets', def({ type: 'declarative', use: 'FFPO', sender: 'initiator', section: '13.3' })],
  ['TargetName', def({ type: 'declarative', use: 'IO', anyStage: true, section: '13.4' })],
  ['InitiatorName', def({ type: 'declarative', use: 'IO', sender: 'initiator', anyStage: true, section: '13.5' })],
  ['TargetAlias', def({ type: 'declarative', use: 'ALL', sender: 'target', anyStage: true, section: '13.6' })],
  ['InitiatorAlias', def({ type: 'declarative', use: 'ALL', sender: 'initiator', anyStage: true, section: '13.7' })],
  ['TargetAddress', def({ type: 'declarative', use: 'ALL', sender: 'target', anyStage: true, section: '13.8' })],
  ['TargetPortalGroupTag', def({ type: 'declarative', use: 'IO', sender: 'target', anyStage: true, range: [0, 65535], section: '13.9' })],
  ['InitialR2T', def({ type: 'or', use: 'LO', irrelevantInDiscovery: true, default: 'Yes', section: '13.10' })],
  ['ImmediateData', def({ type: 'and', use: 'LO', irrelevantInDiscovery: true, default: 'Yes', section: '13.11' })],
  [
    'MaxRecvDataSegmentLength',
    def({ type: 'declarative', use: 'ALL', scope: 'connection', default: '8192', range: LENGTH_RANGE, section: '13.12' }),
  ],
  ['MaxBurstLength', def({ type: 'min', use: 'LO', irrelevantInDiscovery: true, default: '262144', range: LENGTH_RANGE, section: '13.13' })],
  ['FirstBurstLength', def({ type: 'min', use: 'LO', irrelevantInDiscovery: true, default: '65536', range: LENGTH_RANGE, section: '13.14' })],
  ['DefaultTime2Wait', def({ type: 'max', use: 'LO', default: '2', range: [0, 3600], section: '13.15' })],
  ['DefaultTime2Retain', def({ type: 'min', use: 'LO', default: '20', range: [0, 3600], section: '13.16' })],
  ['MaxOutstandingR2T', def({ type: 'min', use: 'LO', irrelevantInDiscovery: true, default: '1', range: [1, 65535], section: '13.17' })],
  ['DataPDUInOrder', def({ type: 'or', use: 'LO', irrelevantInDiscovery: true, default: 'Yes', section: '13.18' })],
  ['DataSequenceInOrder', def({ type: 'or', use: 'LO', irrelevantInDiscovery: true, default: 'Yes', section: '13.19' })],
  ['ErrorRecoveryLevel', def({ type: 'min', use: 'LO', default: '0', range: [0, 2], section: '13.20' })],
  [
    'SessionType',
    def({ type: 'declarative', use: 'LO', sender: 'initiator', anyStage: true, default: 'Normal', values: ['Discovery', 'Normal'], section: '13.21' }),
  ],
  [
    'TaskReporting',
    def({ type: 'list', use: 'LO', irrelevantInDiscovery: true, default: 'RFC3720', values: ['RFC3720', 'ResponseFence', 'FastAbort'], section: '13.23' }),
  ],
  // RFC 7143 13.25: obsoleted; SHOULD answer Reject, MAY answer No for the markers, MUST NOT answer
  // NotUnderstood. We answer No to the markers: RFC 3720 initiators (libiscsi sends IFMarker=No,
  // OFMarker=No) expect a Boolean there.
  ['IFMarker', def({ type: 'obsolete', use: 'IO', scope: 'connection', obsoleteAnswer: 'No', section: '13.25' })],
  ['OFMarker', def({ type: 'obsolete', use: 'IO', scope: 'connection', obsoleteAnswer: 'No', section: '13.25' })],
  ['IFMarkInt', def({ type: 'obsolete', use: 'IO', scope: 'connection', obsoleteAnswer: 'Reject', section: '13.25' })],
  ['OFMarkInt', def({ type: 'obsolete', use: 'IO', scope: 'connection', obsoleteAnswer: 'Reject', section: '13.25' })],
]);

/** Keys of the authentication methods (RFC 7143 12.1): handled by the login's security stage. */
export function isSecurityKey(key: string): boolean {
  return key === 'AuthMethod' || /^(?:CHAP|SRP|KRB|SPKM)_/.test(key);
}

/** RFC 7143 6.2: constants that only a response may carry. */
const RESPONSE_ONLY = new Set(['Reject', 'Irrelevant', 'NotUnderstood']);

/**
 * RFC 7143 6.1 numerical-value: a decimal-constant (no leading zeros) or a hex-constant, below
 * 2^64. Undefined when malformed.
 */
export function parseNumericalValue(value: string): bigint | undefined {
  if (!/^(?:0|[1-9][0-9]{0,19}|0[xX][0-9a-fA-F]{1,16})$/.test(value)) return undefined;
  const n = BigInt(value.startsWith('0X') ? `0x${value.slice(2)}` : value);
  return n < 1n << 64n ? n : undefined;
}

/** Checks a configured offer; throws ArgumentError naming the field. */
export function validateTargetParams(p: TargetParams): void {
  const int = (name: keyof TargetParams, v: number, min: number, max: number): void => {
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new ArgumentError(`target parameter ${name} must be an integer from ${min} to ${max}, got ${v}`);
    }
  };
  int('maxRecvDataSegmentLength', p.maxRecvDataSegmentLength, 512, MAX_DATA_LENGTH);
  int('maxBurstLength', p.maxBurstLength, 512, MAX_DATA_LENGTH);
  int('firstBurstLength', p.firstBurstLength, 512, MAX_DATA_LENGTH);
  if (p.firstBurstLength > p.maxBurstLength) {
    throw new ArgumentError(
      `target parameter firstBurstLength ${p.firstBurstLength} exceeds maxBurstLength ${p.maxBurstLength} (RFC 7143 13.14)`,
    );
  }
  int('maxOutstandingR2T', p.maxOutstandingR2T, 1, 65535);
  int('defaultTime2Wait', p.defaultTime2Wait, 0, 3600);
  int('defaultTime2Retain', p.defaultTime2Retain, 0, 3600);
  int('errorRecoveryLevel', p.errorRecoveryLevel, 0, 0);
  int('maxConnections', p.maxConnections, 1, 1);
  for (const name of ['headerDigest', 'dataDigest'] as const) {
    const list = p[name];
    if (list.length === 0 || list.some((d) => d !== 'None' && d !== 'CRC32C') || new Set(list).size !== list.length) {
      throw new ArgumentError(`target parameter ${name} must list None and/or CRC32C once each, got ${JSON.stringify(list)}`);
    }
  }
}

export type NegotiationStage = 'security' | 'operational' | 'full-feature';

/** Why a request cannot be answered: the login is rejected with Status-Class 2 (initiator error),
 *  detail 00h for `initiator-error`, 09h for `session-type-not-supported` (RFC 7143 11.13.5). */
export interface NegotiationFailure {
  ok: false;
  kind: 'initiator-error' | 'session-type-not-supported';
  reason: string;
}

export type NegotiationOutcome = { ok: true; response: TextPair[] } | NegotiationFailure;

export interface NegotiatorOptions {
  /** A leading login (TSIH 0) may carry LO keys; a connection added to a session may not. */
  leading?: boolean;
}

const yes = (b: boolean): string => (b ? 'Yes' : 'No');

/**
 * The negotiation state of one connection's login (and its later Text negotiations). Feed every
 * request's keys, minus the security keys, to {@link process}; before the login leaves the
 * operational stage send {@link targetOffers} and wait while {@link awaitingAnswers}.
 */
export class Negotiator {
  private readonly params: Readonly<TargetParams>;
  private readonly leading: boolean;
  /** Results of negotiated keys, and the initiator's declarations. */
  private readonly agreed = new Map<string, string>();
  /** Keys already negotiated or declared (Reject and Irrelevant included). */
  private readonly seen = new Set<string>();
  /** Our proposals still waiting for the initiator's answer. */
  private readonly proposals = new Map<string, string>();
  /** Our declarations and proposals already sent. */
  private readonly sent = new Set<string>();
  private calls = 0;

  constructor(params: Readonly<TargetParams> = DEFAULT_TARGET_PARAMS, opts: NegotiatorOptions = {}) {
    validateTargetParams(params);
    this.params = params;
    this.leading = opts.leading ?? true;
  }

  get sessionType(): SessionType {
    return (this.agreed.get('SessionType') as SessionType | undefined) ?? 'Normal';
  }

  get initiatorName(): string | undefined {
    return this.agreed.get('InitiatorName');
  }

  get targetName(): string | undefined {
    return this.agreed.get('TargetName');
  }

  get initiatorAlias(): string | undefined {
    return this.agreed.get('InitiatorAlias');
  }

  /** Whether proposals we sent still wait for the initiator's answer (no transit until then). */
  get awaitingAnswers(): boolean {
    return this.proposals.size > 0;
  }

  /**
   * Answers one request's keys (already gathered over C-bit continuations, security keys removed).
   * Keys that influence others are handled first (SessionType; MaxBurstLength, InitialR2T and
   * ImmediateData before FirstBurstLength); answers come back in the order the keys came.
   */
  process(pairs: ReadonlyArray<readonly [string, string]>, stage: NegotiationStage): NegotiationOutcome {
    const first = this.calls++ === 0;
    const rank = (k: string): number => (k === 'SessionType' ? 0 : k === 'FirstBurstLength' ? 2 : 1);
    const order = pairs.map((_, i) => i).sort((a, b) => rank(pairs[a][0]) - rank(pairs[b][0]) || a - b);
    const answers: (string | undefined)[] = new Array(pairs.length);
    for (const i of order) {
      const [key, value] = pairs[i];
      const r = this.handle(key, value, stage, first);
      if (typeof r === 'object') return r;
      answers[i] = r;
    }
    const response: TextPair[] = [];
    pairs.forEach(([key], i) => {
      const a = answers[i];
      if (a !== undefined) response.push([key, a]);
    });
    return { ok: true, response };
  }

  /**
   * What the target still has to send before the login may enter full feature phase: our
   * MaxRecvDataSegmentLength declaration (13.12), and, with `proposals`, proposals for keys the
   * initiator did not offer where the default is not acceptable to us (e.g. ImmediateData when we
   * refuse immediate data, HeaderDigest when we insist on CRC32C). Each is returned once;
   * proposals then wait in {@link awaitingAnswers}. Ask for proposals only once the initiator
   * asks to leave the stage (T=1): it has offered all it wanted by then, so our proposal cannot
   * cross its own offer of the same key.
   */
  targetOffers(proposals = true): TextPair[] {
    const out: TextPair[] = [];
    if (!this.sent.has('MaxRecvDataSegmentLength')) {
      this.sent.add('MaxRecvDataSegmentLength');
      out.push(['MaxRecvDataSegmentLength', String(this.params.maxRecvDataSegmentLength)]);
    }
    if (!proposals) return out;
    for (const [key, value] of this.neededProposals()) {
      this.sent.add(key);
      this.proposals.set(key, value);
      out.push([key, value]);
    }
    return out;
  }

  /**
   * Whether the target still has something it must say before full feature phase: a
   * MaxRecvDataSegmentLength other than the 8192 default not yet declared, or a needed proposal.
   */
  hasPendingOffers(): boolean {
    const mustDeclare =
      !this.sent.has('MaxRecvDataSegmentLength') && this.params.maxRecvDataSegmentLength !== DEFAULT_MAX_RECV_DATA_SEGMENT_LENGTH;
    return mustDeclare || this.neededProposals().length > 0;
  }

  /** The outcome so far: agreed values, defaults for the rest (RFC 7143 13). */
  result(): NegotiatedParams {
    const str = (key: string): string => this.agreed.get(key) ?? KEYS.get(key)!.default!;
    const num = (key: string): number => Number(parseNumericalValue(str(key)));
    const bool = (key: string): boolean => str(key) === 'Yes';
    const maxBurstLength = num('MaxBurstLength');
    return {
      headerDigest: str('HeaderDigest') as Digest,
      dataDigest: str('DataDigest') as Digest,
      targetMaxRecvDataSegmentLength: this.sent.has('MaxRecvDataSegmentLength')
        ? this.params.maxRecvDataSegmentLength
        : DEFAULT_MAX_RECV_DATA_SEGMENT_LENGTH,
      initiatorMaxRecvDataSegmentLength: num('MaxRecvDataSegmentLength'),
      maxBurstLength,
      firstBurstLength: Math.min(num('FirstBurstLength'), maxBurstLength),
      initialR2T: bool('InitialR2T'),
      immediateData: bool('ImmediateData'),
      maxOutstandingR2T: num('MaxOutstandingR2T'),
      dataPDUInOrder: bool('DataPDUInOrder'),
      dataSequenceInOrder: bool('DataSequenceInOrder'),
      defaultTime2Wait: num('DefaultTime2Wait'),
      defaultTime2Retain: num('DefaultTime2Retain'),
      errorRecoveryLevel: num('ErrorRecoveryLevel'),
      maxConnections: num('MaxConnections'),
    };
  }

  // --- internals ---

  private fail(reason: string, kind: NegotiationFailure['kind'] = 'initiator-error'): NegotiationFailure {
    return { ok: false, kind, reason };
  }

  /** Our value of a negotiated key, as we would answer it. */
  private ours(key: string): string | readonly string[] {
    const p = this.params;
    switch (key) {
      case 'HeaderDigest':
        return p.headerDigest;
      case 'DataDigest':
        return p.dataDigest;
      case 'TaskReporting':
        return ['RFC3720'];
      case 'MaxConnections':
        return String(p.maxConnections);
      case 'InitialR2T':
        return yes(p.initialR2T);
      case 'ImmediateData':
        return yes(p.immediateData);
      case 'MaxBurstLength':
        return String(p.maxBurstLength);
      case 'FirstBurstLength':
        return String(p.firstBurstLength);
      case 'DefaultTime2Wait':
        return String(p.defaultTime2Wait);
      case 'DefaultTime2Retain':
        return String(p.defaultTime2Retain);
      case 'MaxOutstandingR2T':
        return String(p.maxOutstandingR2T);
      case 'DataPDUInOrder':
        return yes(p.dataPDUInOrder);
      case 'DataSequenceInOrder':
        return yes(p.dataSequenceInOrder);
      case 'ErrorRecoveryLevel':
        return String(p.errorRecoveryLevel);
      default:
        throw new Error(`no target value for ${key}`);
    }
  }

  /** Proposals needed because the key's default is not acceptable to us and nobody offered it. */
  private neededProposals(): TextPair[] {
    const out: TextPair[] = [];
    for (const [key, d] of KEYS) {
      if (this.seen.has(key) || this.sent.has(key)) continue;
      if (d.use === 'LO' && (!this.leading || this.sessionType === 'Discovery')) continue;
      if (d.irrelevantInDiscovery && this.sessionType === 'Discovery') continue;
      if (key === 'FirstBurstLength' && this.currentBool('InitialR2T') && !this.currentBool('ImmediateData')) continue;
      const proposal = this.proposalFor(key, d);
      if (proposal !== undefined) out.push([key, proposal]);
    }
    return out;
  }

  /**
   * What we would propose for a negotiated key, when its default is not acceptable to us;
   * undefined when the default will do.
   */
  private proposalFor(key: string, d: KeyDefinition): string | undefined {
    switch (d.type) {
      case 'list': {
        const ours = this.ours(key) as readonly string[];
        return ours.includes(d.default!) ? undefined : ours.join(',');
      }
      case 'min':
        return Number(this.ours(key)) < Number(d.default) ? (this.ours(key) as string) : undefined;
      case 'max':
        return Number(this.ours(key)) > Number(d.default) ? (this.ours(key) as string) : undefined;
      case 'and':
        return this.ours(key) === 'No' && d.default === 'Yes' ? 'No' : undefined;
      case 'or':
        return this.ours(key) === 'Yes' && d.default === 'No' ? 'Yes' : undefined;
      default:
        return undefined;
    }
  }

  /**
   * "Reject" leaves a key at its default (RFC 7143 6.2); when the default is not acceptable to us
   * either, the negotiation cannot succeed.
   */
  private reject(key: string, value: string, d: KeyDefinition): string | NegotiationFailure {
    if (this.proposalFor(key, d) === undefined) return 'Reject';
    return this.fail(`${key}=${value} is not acceptable, and neither is the default ${key}=${d.default}`);
  }

  /** Current value of a Boolean key (agreed or default). */
  private currentBool(key: string): boolean {
    return (this.agreed.get(key) ?? KEYS.get(key)!.default) === 'Yes';
  }

  /** Answer to one key: a string to send, undefined for no answer, or a failure. */
  private handle(key: string, value: string, stage: NegotiationStage, first: boolean): string | undefined | NegotiationFailure {
    const d = KEYS.get(key);
    if (isSecurityKey(key)) {
      return this.fail(`${key} is a security key, allowed only in the security negotiation stage (RFC 7143 6.3)`);
    }
    if (!d) {
      if (stage !== 'full-feature' && this.seen.has(key)) return this.fail(`${key} sent twice (RFC 7143 6.3)`);
      this.seen.add(key);
      return 'NotUnderstood';
    }
    if (d.sender === 'target') return this.fail(`${key} is sent by targets only (RFC 7143 ${d.section})`);

    // Stage rules (RFC 7143 6.3, 13 "Use").
    if (stage === 'security' && !d.anyStage) {
      return this.fail(`${key} may not be negotiated in the security negotiation stage (RFC 7143 6.3)`);
    }
    if (stage !== 'full-feature' && d.use === 'FFPO') return this.fail(`${key} is valid in full feature phase only (RFC 7143 ${d.section})`);
    if (stage === 'full-feature') {
      if (d.use === 'FFPO') return undefined; // SendTargets: the connection layer answers it
      if (d.use !== 'ALL') return 'Reject';
    }
    if (d.use === 'LO' && !this.leading && key !== 'SessionType') {
      return this.fail(`${key} is valid in the leading login only (RFC 7143 ${d.section})`);
    }
    if (RESPONSE_ONLY.has(value) && !this.proposals.has(key)) return this.fail(`${key}=${value} is a response, not an offer (RFC 7143 6.2)`);

    if (this.proposals.has(key)) return this.answered(key, value, d);

    if (d.type === 'declarative') return this.declare(key, value, d, first, stage);
    if (this.seen.has(key)) return this.fail(`${key} negotiated twice (RFC 7143 6.3)`);
    this.seen.add(key);

    if (d.type === 'obsolete') return d.obsoleteAnswer;
    if (d.irrelevantInDiscovery && this.sessionType === 'Discovery') return 'Irrelevant';
    // RFC 7143 13.14: FirstBurstLength is irrelevant when InitialR2T=Yes and ImmediateData=No.
    if (key === 'FirstBurstLength' && this.currentBool('InitialR2T') && !this.currentBool('ImmediateData')) return 'Irrelevant';

    switch (d.type) {
      case 'list': {
        const ours = this.ours(key) as readonly string[];
        const pick = value.split(',').find((v) => ours.includes(v));
        if (pick === undefined) return this.reject(key, value, d);
        this.agreed.set(key, pick);
        return pick;
      }
      case 'and':
      case 'or': {
        if (value !== 'Yes' && value !== 'No') return this.reject(key, value, d);
        const a = value === 'Yes';
        const b = this.ours(key) === 'Yes';
        const r = yes(d.type === 'and' ? a && b : a || b);
        this.agreed.set(key, r);
        return r;
      }
      case 'min':
      case 'max': {
        const n = parseNumericalValue(value);
        const [lo, hi] = d.range!;
        if (n === undefined || n < BigInt(lo) || n > BigInt(hi)) return this.reject(key, value, d);
        const offered = Number(n);
        const ours = Number(this.ours(key));
        let r = d.type === 'min' ? Math.min(offered, ours) : Math.max(offered, ours);
        if (key === 'FirstBurstLength') {
          r = Math.min(r, Number(this.agreed.get('MaxBurstLength') ?? KEYS.get('MaxBurstLength')!.default));
        }
        this.agreed.set(key, String(r));
        return String(r);
      }
      default:
        return this.fail(`${key}: unhandled key type ${d.type}`);
    }
  }

  /** An initiator declaration: recorded, never answered. */
  private declare(key: string, value: string, d: KeyDefinition, first: boolean, stage: NegotiationStage): undefined | NegotiationFailure {
    const previous = this.agreed.get(key);
    if (this.seen.has(key) && stage !== 'full-feature') {
      // An identical re-declaration is tolerated (UNH-IOL's reading of RFC 7143 6.3 for
      // TargetName and MaxRecvDataSegmentLength); a changed name or session type is not.
      if (previous === value) return undefined;
      if (key !== 'MaxRecvDataSegmentLength' && key !== 'InitiatorAlias') {
        return this.fail(`${key} declared twice with different values (RFC 7143 6.3)`);
      }
    }
    switch (key) {
      case 'SessionType':
        if (value !== 'Normal' && value !== 'Discovery') {
          return this.fail(`SessionType=${value} is neither Normal nor Discovery (RFC 7143 13.21)`, 'session-type-not-supported');
        }
        // The session type decides which keys are relevant: it belongs in the first request.
        if (!first && value !== this.sessionType) return this.fail('SessionType must be declared in the first login request');
        break;
      case 'InitiatorName':
      case 'TargetName':
        if (Buffer.byteLength(value, 'utf8') > MAX_ISCSI_NAME_LENGTH) {
          return this.fail(`${key} is longer than ${MAX_ISCSI_NAME_LENGTH} bytes (RFC 7143 4.2.7.1)`);
        }
        if (value.length === 0) {
          this.seen.add(key);
          return undefined; // the login reports the missing parameter
        }
        break;
      case 'MaxRecvDataSegmentLength': {
        const n = parseNumericalValue(value);
        const [lo, hi] = d.range!;
        if (n === undefined || n < BigInt(lo) || n > BigInt(hi)) {
          return this.fail(`MaxRecvDataSegmentLength=${value} is not a number from ${lo} to ${hi} (RFC 7143 13.12)`);
        }
        value = String(n);
        break;
      }
      default:
        break;
    }
    this.seen.add(key);
    this.agreed.set(key, value);
    return undefined;
  }

  /** The initiator's answer to one of our proposals. */
  private answered(key: string, value: string, d: KeyDefinition): undefined | NegotiationFailure {
    const proposal = this.proposals.get(key)!;
    this.proposals.delete(key);
    this.seen.add(key);
    // Irrelevant is a fair answer where RFC 7143 13.14 makes the key irrelevant; elsewhere it
    // would leave a default we cannot accept.
    if (value === 'Irrelevant' && key === 'FirstBurstLength') return undefined;
    if (RESPONSE_ONLY.has(value)) {
      return this.fail(`the initiator answered ${key}=${value} to our ${key}=${proposal}, which we need (the default is not acceptable)`);
    }
    let ok = false;
    switch (d.type) {
      case 'list':
        ok = proposal.split(',').includes(value);
        break;
      case 'and':
      case 'or':
        ok = value === (d.type === 'and' ? 'No' : 'Yes') || value === proposal;
        break;
      case 'min':
      case 'max': {
        const n = parseNumericalValue(value);
        const [lo, hi] = d.range!;
        const p = Number(proposal);
        ok = n !== undefined && n >= BigInt(lo) && n <= BigInt(hi) && (d.type === 'min' ? Number(n) <= p : Number(n) >= p);
        if (ok) value = String(n);
        break;
      }
      default:
        break;
    }
    if (!ok) return this.fail(`${key}=${value} is not a valid answer to our ${key}=${proposal} (RFC 7143 6.2)`);
    this.agreed.set(key, value);
    return undefined;
  }
}
