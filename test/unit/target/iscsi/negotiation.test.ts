import fc from 'fast-check';
import { ArgumentError } from '../../../../src/errors';
import {
  DEFAULT_TARGET_PARAMS,
  KEYS,
  Negotiator,
  isSecurityKey,
  parseNumericalValue,
  validateTargetParams,
  type NegotiationOutcome,
  type TargetParams,
} from '../../../../src/target/iscsi/negotiation';
import { encodeTextData, parseTextPairs, type TextPair } from '../../../../src/target/iscsi/text';
import { LIBISCSI_1_19_LEADING_LOGIN, LIBISCSI_1_19_OPERATIONAL } from './fixtures';

function ok(o: NegotiationOutcome): TextPair[] {
  if (!o.ok) throw new Error(`negotiation failed: ${o.reason}`);
  return o.response;
}

/** The answer of a fresh leading Normal-session negotiator to one key. */
function answer(key: string, value: string, params: TargetParams = DEFAULT_TARGET_PARAMS): string | undefined {
  const r = ok(new Negotiator(params).process([[key, value]], 'operational'));
  return r.find(([k]) => k === key)?.[1];
}

// Every key a target answers, with the offer and our answer under DEFAULT_TARGET_PARAMS (ours:
// MaxRecvDataSegmentLength 262144, MaxBurstLength 262144, FirstBurstLength 65536, InitialR2T=Yes,
// ImmediateData=Yes, MaxOutstandingR2T 1, in-order Yes, Time2Wait 2, Time2Retain 20, ERL 0,
// MaxConnections 1, digests None and CRC32C).
const TABLE: Array<[key: string, offer: string, answer: string]> = [
  // list (RFC 7143 6.2.1): the first value of the initiator's list that we support
  ['HeaderDigest', 'None,CRC32C', 'None'],
  ['HeaderDigest', 'CRC32C,None', 'CRC32C'],
  ['HeaderDigest', 'MD5,CRC32C', 'CRC32C'],
  ['HeaderDigest', 'MD5', 'Reject'],
  ['DataDigest', 'CRC32C', 'CRC32C'],
  ['DataDigest', 'None', 'None'],
  ['DataDigest', '', 'Reject'],
  ['TaskReporting', 'ResponseFence,RFC3720', 'RFC3720'],
  ['TaskReporting', 'FastAbort', 'Reject'],
  // numerical minimum (6.2.2) and its range
  ['MaxConnections', '4', '1'],
  ['MaxConnections', '1', '1'],
  ['MaxConnections', '0', 'Reject'],
  ['MaxConnections', '65536', 'Reject'],
  ['MaxBurstLength', '1048576', '262144'],
  ['MaxBurstLength', '8192', '8192'],
  ['MaxBurstLength', '0x2000', '8192'],
  ['MaxBurstLength', '511', 'Reject'],
  ['MaxBurstLength', '16777216', 'Reject'],
  ['MaxBurstLength', '08192', 'Reject'],
  ['MaxBurstLength', '-1', 'Reject'],
  ['MaxBurstLength', '18446744073709551616', 'Reject'],
  ['FirstBurstLength', '262144', '65536'],
  ['FirstBurstLength', '4096', '4096'],
  ['FirstBurstLength', '100', 'Reject'],
  ['DefaultTime2Retain', '60', '20'],
  ['DefaultTime2Retain', '0', '0'],
  ['DefaultTime2Retain', '3601', 'Reject'],
  ['MaxOutstandingR2T', '8', '1'],
  ['MaxOutstandingR2T', '0', 'Reject'],
  ['ErrorRecoveryLevel', '2', '0'],
  ['ErrorRecoveryLevel', '0', '0'],
  ['ErrorRecoveryLevel', '3', 'Reject'],
  // numerical maximum
  ['DefaultTime2Wait', '0', '2'],
  ['DefaultTime2Wait', '10', '10'],
  ['DefaultTime2Wait', '3601', 'Reject'],
  // Boolean OR: Yes wins
  ['InitialR2T', 'No', 'Yes'],
  ['InitialR2T', 'Yes', 'Yes'],
  ['InitialR2T', 'yes', 'Reject'],
  ['DataPDUInOrder', 'No', 'Yes'],
  ['DataSequenceInOrder', 'No', 'Yes'],
  // Boolean AND: No wins
  ['ImmediateData', 'Yes', 'Yes'],
  ['ImmediateData', 'No', 'No'],
  ['ImmediateData', 'Maybe', 'Reject'],
  // obsoleted (13.25): markers are answered No, their intervals Reject, never NotUnderstood
  ['IFMarker', 'Yes', 'No'],
  ['OFMarker', 'No', 'No'],
  ['IFMarkInt', '2048~8192', 'Reject'],
  ['OFMarkInt', '2048~8192', 'Reject'],
  // unknown and extension keys (6.2, 13.22)
  ['X-com.example.Feature', 'Yes', 'NotUnderstood'],
  ['X#NodeArchitecture', 'ExampleOS/1.0', 'NotUnderstood'],
  ['FooBar', '1', 'NotUnderstood'],
  ['iSCSIProtocolLevel', '2', 'NotUnderstood'],
];

describe('operational negotiation, one key at a time (RFC 7143 6.2, 13)', () => {
  it.each(TABLE)('%s=%s is answered %s', (key, offer, expected) => {
    expect(answer(key, offer)).toBe(expected);
  });

  it('answers no declarative key, but records it', () => {
    const n = new Negotiator();
    const r = ok(
      n.process(
        [
          ['InitiatorName', 'iqn.2026-11.test:host'],
          ['InitiatorAlias', 'host'],
          ['TargetName', 'iqn.2026-11.test:disk'],
          ['SessionType', 'Normal'],
          ['MaxRecvDataSegmentLength', '65536'],
        ],
        'operational',
      ),
    );
    expect(r).toEqual([]);
    expect([n.initiatorName, n.initiatorAlias, n.targetName, n.sessionType]).toEqual(['iqn.2026-11.test:host', 'host', 'iqn.2026-11.test:disk', 'Normal']);
    expect(n.result().initiatorMaxRecvDataSegmentLength).toBe(65536);
  });

  it('answers keys in the order they came, whatever order it evaluates them in', () => {
    const r = ok(new Negotiator().process([['FirstBurstLength', '262144'], ['MaxBurstLength', '16384'], ['X-a', '1']], 'operational'));
    // FirstBurstLength is evaluated after MaxBurstLength and may not exceed it (13.14).
    expect(r).toEqual([['FirstBurstLength', '16384'], ['MaxBurstLength', '16384'], ['X-a', 'NotUnderstood']]);
  });

  it('says Irrelevant to FirstBurstLength when InitialR2T=Yes and ImmediateData=No (13.14)', () => {
    const r = ok(new Negotiator().process([['ImmediateData', 'No'], ['FirstBurstLength', '4096'], ['InitialR2T', 'Yes']], 'operational'));
    expect(r).toEqual([['ImmediateData', 'No'], ['FirstBurstLength', 'Irrelevant'], ['InitialR2T', 'Yes']]);
  });

  it('says Irrelevant in a discovery session to the keys marked so in RFC 7143 13', () => {
    const n = new Negotiator();
    const keys = LIBISCSI_1_19_OPERATIONAL;
    const r = new Map(ok(n.process([['SessionType', 'Discovery'], ...keys], 'operational')));
    const irrelevant = [...KEYS].filter(([, d]) => d.irrelevantInDiscovery).map(([k]) => k);
    expect(irrelevant.sort()).toEqual(
      ['DataPDUInOrder', 'DataSequenceInOrder', 'FirstBurstLength', 'ImmediateData', 'InitialR2T', 'MaxBurstLength', 'MaxConnections', 'MaxOutstandingR2T', 'TaskReporting'].sort(),
    );
    for (const [k] of keys) {
      if (irrelevant.includes(k)) expect(r.get(k)).toBe('Irrelevant');
    }
    // Still negotiated in discovery: digests, timers, error recovery level.
    expect(r.get('HeaderDigest')).toBe('None');
    expect(r.get('DefaultTime2Wait')).toBe('2');
    expect(r.get('ErrorRecoveryLevel')).toBe('0');
  });

  it('refuses what may not be sent by an initiator or not in this stage', () => {
    const fails = (pairs: TextPair[], stage: 'security' | 'operational' = 'operational', leading = true): string => {
      const o = new Negotiator(DEFAULT_TARGET_PARAMS, { leading }).process(pairs, stage);
      if (o.ok) throw new Error(`expected a failure for ${JSON.stringify(pairs)}`);
      expect(o.kind).toBe('initiator-error');
      return o.reason;
    };
    expect(fails([['TargetPortalGroupTag', '1']])).toMatch(/targets only/);
    expect(fails([['TargetAlias', 'x']])).toMatch(/targets only/);
    expect(fails([['TargetAddress', '10.0.0.1:3260,1']])).toMatch(/targets only/);
    expect(fails([['SendTargets', 'All']])).toMatch(/full feature phase only/);
    expect(fails([['HeaderDigest', 'None']], 'security')).toMatch(/security negotiation stage/);
    expect(fails([['CHAP_A', '5']])).toMatch(/security key/);
    expect(fails([['AuthMethod', 'None']])).toMatch(/security key/);
    expect(fails([['MaxBurstLength', '8192']], 'operational', false)).toMatch(/leading login only/);
    expect(fails([['InitialR2T', 'Reject']])).toMatch(/response, not an offer/);
  });

  it('accepts the declarative keys in the security stage', () => {
    const n = new Negotiator();
    expect(ok(n.process([['InitiatorName', 'iqn.2026-11.test:host'], ['SessionType', 'Normal'], ['TargetName', 't'], ['X-a', 'b']], 'security'))).toEqual([
      ['X-a', 'NotUnderstood'],
    ]);
  });

  it('accepts per-connection keys on a non-leading connection', () => {
    const n = new Negotiator(DEFAULT_TARGET_PARAMS, { leading: false });
    expect(ok(n.process([['HeaderDigest', 'CRC32C'], ['MaxRecvDataSegmentLength', '8192'], ['SessionType', 'Normal']], 'operational'))).toEqual([
      ['HeaderDigest', 'CRC32C'],
    ]);
  });

  it('refuses a session type that does not exist with its own status', () => {
    const o = new Negotiator().process([['SessionType', 'Boot']], 'security');
    expect(o).toMatchObject({ ok: false, kind: 'session-type-not-supported' });
  });

  it('refuses an out-of-range MaxRecvDataSegmentLength declaration', () => {
    expect(new Negotiator().process([['MaxRecvDataSegmentLength', '511']], 'operational').ok).toBe(false);
    expect(new Negotiator().process([['MaxRecvDataSegmentLength', '16777216']], 'operational').ok).toBe(false);
    expect(new Negotiator().process([['MaxRecvDataSegmentLength', 'lots']], 'operational').ok).toBe(false);
  });
});

describe('negotiation over several requests', () => {
  it('refuses a key negotiated twice, tolerates an identical re-declaration (RFC 7143 6.3)', () => {
    const n = new Negotiator();
    ok(n.process([['InitiatorName', 'iqn.2026-11.test:host'], ['MaxBurstLength', '8192'], ['X-a', '1']], 'operational'));
    expect(ok(n.process([['InitiatorName', 'iqn.2026-11.test:host']], 'operational'))).toEqual([]);
    expect(n.process([['MaxBurstLength', '8192']], 'operational').ok).toBe(false);
    expect(new Negotiator().process([['X-a', '1']], 'operational').ok).toBe(true);
    const m = new Negotiator();
    ok(m.process([['X-a', '1']], 'operational'));
    expect(m.process([['X-a', '1']], 'operational').ok).toBe(false);
    const k = new Negotiator();
    ok(k.process([['InitiatorName', 'iqn.2026-11.test:host']], 'security'));
    expect(k.process([['InitiatorName', 'iqn.2026-11.test:other']], 'operational').ok).toBe(false);
  });

  it('lets MaxRecvDataSegmentLength be declared again with a new value', () => {
    const n = new Negotiator();
    ok(n.process([['MaxRecvDataSegmentLength', '8192']], 'operational'));
    ok(n.process([['MaxRecvDataSegmentLength', '65536']], 'operational'));
    expect(n.result().initiatorMaxRecvDataSegmentLength).toBe(65536);
  });

  it('wants SessionType in the first request', () => {
    const n = new Negotiator();
    ok(n.process([['InitiatorName', 'iqn.2026-11.test:host']], 'security'));
    expect(n.process([['SessionType', 'Discovery']], 'operational').ok).toBe(false);
    const m = new Negotiator();
    ok(m.process([['InitiatorName', 'iqn.2026-11.test:host']], 'security'));
    expect(m.process([['SessionType', 'Normal']], 'operational').ok).toBe(true);
  });

  it('in full feature phase answers ALL keys only', () => {
    const n = new Negotiator();
    ok(n.process([['MaxBurstLength', '8192']], 'operational'));
    expect(ok(n.process([['MaxRecvDataSegmentLength', '16384'], ['MaxBurstLength', '4096'], ['X-y', 'z'], ['SendTargets', 'All']], 'full-feature'))).toEqual([
      ['MaxBurstLength', 'Reject'],
      ['X-y', 'NotUnderstood'],
    ]);
    expect(n.result()).toMatchObject({ initiatorMaxRecvDataSegmentLength: 16384, maxBurstLength: 8192 });
  });
});

describe("the target's declarations and proposals", () => {
  it('declares our MaxRecvDataSegmentLength once', () => {
    const n = new Negotiator();
    expect(n.hasPendingOffers()).toBe(true);
    expect(n.targetOffers()).toEqual([['MaxRecvDataSegmentLength', '262144']]);
    expect(n.targetOffers()).toEqual([]);
    expect(n.hasPendingOffers()).toBe(false);
    // With the default 8192 there is nothing we must say (but we still declare it once when asked).
    const d = new Negotiator({ ...DEFAULT_TARGET_PARAMS, maxRecvDataSegmentLength: 8192 });
    expect(d.hasPendingOffers()).toBe(false);
    expect(d.targetOffers()).toEqual([['MaxRecvDataSegmentLength', '8192']]);
    expect(n.awaitingAnswers).toBe(false);
    expect(n.result().targetMaxRecvDataSegmentLength).toBe(262144);
  });

  it('reports 8192 as ours when we never declared it (the initiator assumes the default)', () => {
    expect(new Negotiator().result().targetMaxRecvDataSegmentLength).toBe(8192);
  });

  it('proposes what the initiator left at a default we cannot accept, and waits for the answer', () => {
    const params: TargetParams = { ...DEFAULT_TARGET_PARAMS, immediateData: false, maxBurstLength: 65536, firstBurstLength: 16384, headerDigest: ['CRC32C'] };
    const n = new Negotiator(params);
    ok(n.process([['DataDigest', 'None']], 'operational'));
    expect(n.targetOffers(false)).toEqual([['MaxRecvDataSegmentLength', '262144']]);
    expect(n.targetOffers()).toEqual([
      ['HeaderDigest', 'CRC32C'],
      ['ImmediateData', 'No'],
      ['MaxBurstLength', '65536'],
      ['FirstBurstLength', '16384'],
    ]);
    expect(n.awaitingAnswers).toBe(true);
    expect(ok(n.process([['HeaderDigest', 'CRC32C'], ['ImmediateData', 'No'], ['MaxBurstLength', '32768'], ['FirstBurstLength', '16384']], 'operational'))).toEqual([]);
    expect(n.awaitingAnswers).toBe(false);
    expect(n.result()).toMatchObject({ headerDigest: 'CRC32C', immediateData: false, maxBurstLength: 32768, firstBurstLength: 16384 });
  });

  it('refuses answers that do not fit our proposal', () => {
    const params: TargetParams = { ...DEFAULT_TARGET_PARAMS, immediateData: false, maxBurstLength: 65536, firstBurstLength: 16384, headerDigest: ['CRC32C'] };
    for (const bad of [
      ['HeaderDigest', 'None'],
      ['ImmediateData', 'Yes'],
      ['MaxBurstLength', '131072'],
      ['MaxBurstLength', 'Reject'],
      ['FirstBurstLength', 'NotUnderstood'],
      ['ImmediateData', 'Irrelevant'],
    ] as TextPair[]) {
      const n = new Negotiator(params);
      n.targetOffers();
      expect(n.process([bad], 'operational').ok).toBe(false);
    }
    const n = new Negotiator(params);
    n.targetOffers();
    expect(n.process([['FirstBurstLength', 'Irrelevant']], 'operational').ok).toBe(true);
  });

  it('fails rather than Reject when the default that Reject leaves is not acceptable to us either', () => {
    const crcOnly: TargetParams = { ...DEFAULT_TARGET_PARAMS, headerDigest: ['CRC32C'], maxBurstLength: 65536, firstBurstLength: 16384 };
    expect(new Negotiator(crcOnly).process([['HeaderDigest', 'None']], 'operational')).toMatchObject({ ok: false, reason: expect.stringMatching(/default/) });
    expect(new Negotiator(crcOnly).process([['MaxBurstLength', '100']], 'operational').ok).toBe(false);
    // The default of DataDigest (None) is fine by us: a plain Reject.
    expect(ok(new Negotiator(crcOnly).process([['DataDigest', 'MD5']], 'operational'))).toEqual([['DataDigest', 'Reject']]);
  });

  it('proposes nothing in a discovery session but the digests it insists on', () => {
    const params: TargetParams = { ...DEFAULT_TARGET_PARAMS, immediateData: false, dataDigest: ['CRC32C'] };
    const n = new Negotiator(params);
    ok(n.process([['SessionType', 'Discovery']], 'security'));
    expect(n.targetOffers()).toEqual([['MaxRecvDataSegmentLength', '262144'], ['DataDigest', 'CRC32C']]);
  });
});

describe('libiscsi 1.19 leading login (golden)', () => {
  it('answers every key, and the result is what the connection runs with', () => {
    const n = new Negotiator();
    const pairs = parseTextPairs(LIBISCSI_1_19_LEADING_LOGIN);
    const response = [...ok(n.process(pairs, 'operational')), ...n.targetOffers()];
    expect(encodeTextData(response).toString('latin1').split('\0')).toEqual([
      'HeaderDigest=None',
      'DataDigest=None',
      'InitialR2T=Yes',
      'ImmediateData=Yes',
      'MaxBurstLength=262144',
      'FirstBurstLength=65536',
      'DefaultTime2Wait=2',
      'DefaultTime2Retain=0',
      'MaxOutstandingR2T=1',
      'ErrorRecoveryLevel=0',
      'IFMarker=No',
      'OFMarker=No',
      'MaxConnections=1',
      'DataPDUInOrder=Yes',
      'DataSequenceInOrder=Yes',
      'MaxRecvDataSegmentLength=262144',
      '',
    ]);
    expect(n.awaitingAnswers).toBe(false);
    expect(n.result()).toEqual({
      headerDigest: 'None',
      dataDigest: 'None',
      targetMaxRecvDataSegmentLength: 262144,
      initiatorMaxRecvDataSegmentLength: 262144,
      maxBurstLength: 262144,
      firstBurstLength: 65536,
      initialR2T: true,
      immediateData: true,
      maxOutstandingR2T: 1,
      dataPDUInOrder: true,
      dataSequenceInOrder: true,
      defaultTime2Wait: 2,
      defaultTime2Retain: 0,
      errorRecoveryLevel: 0,
      maxConnections: 1,
    });
  });

  it('gives the RFC defaults when nothing is negotiated', () => {
    expect(new Negotiator().result()).toMatchObject({
      headerDigest: 'None',
      initiatorMaxRecvDataSegmentLength: 8192,
      maxBurstLength: 262144,
      firstBurstLength: 65536,
      initialR2T: true,
      immediateData: true,
      defaultTime2Wait: 2,
      defaultTime2Retain: 20,
    });
  });
});

describe('helpers', () => {
  it('parses numerical values (RFC 7143 6.1): decimal without leading zeros, or hex, below 2^64', () => {
    expect(parseNumericalValue('0')).toBe(0n);
    expect(parseNumericalValue('262144')).toBe(262144n);
    expect(parseNumericalValue('0x40000')).toBe(262144n);
    expect(parseNumericalValue('0X40000')).toBe(262144n);
    expect(parseNumericalValue('18446744073709551615')).toBe(18446744073709551615n);
    for (const bad of ['', '01', '1e3', ' 1', '0x', '-0', '18446744073709551616', '0x10000000000000000']) {
      expect(parseNumericalValue(bad)).toBeUndefined();
    }
  });

  it('tells security keys apart', () => {
    expect(['AuthMethod', 'CHAP_A', 'CHAP_R', 'SRP_U', 'KRB_AP_REQ', 'SPKM_REQ'].every(isSecurityKey)).toBe(true);
    expect(['HeaderDigest', 'CHAP', 'X-CHAP_A'].some(isSecurityKey)).toBe(false);
  });

  it('validates the configured offer', () => {
    expect(() => validateTargetParams(DEFAULT_TARGET_PARAMS)).not.toThrow();
    const bad: Array<Partial<TargetParams>> = [
      { firstBurstLength: 524288 },
      { maxRecvDataSegmentLength: 511 },
      { maxBurstLength: 16777216 },
      { errorRecoveryLevel: 1 },
      { maxConnections: 2 },
      { headerDigest: [] },
      { dataDigest: ['None', 'None'] },
      { defaultTime2Wait: 1.5 },
    ];
    for (const b of bad) expect(() => validateTargetParams({ ...DEFAULT_TARGET_PARAMS, ...b })).toThrow(ArgumentError);
    expect(() => new Negotiator({ ...DEFAULT_TARGET_PARAMS, firstBurstLength: 524288 })).toThrow(/RFC 7143 13.14/);
  });
});

describe('robustness', () => {
  const knownKeys = [...KEYS.keys()];
  const key = fc.oneof(fc.constantFrom(...knownKeys), fc.stringMatching(/^[A-Z][A-Za-z0-9]{0,10}$/), fc.stringMatching(/^X-[a-z]{1,5}$/));
  const value = fc.oneof(
    fc.constantFrom('Yes', 'No', 'None', 'CRC32C', 'None,CRC32C', 'Reject', 'Irrelevant', 'NotUnderstood', 'Normal', 'Discovery', '0', '1', '512', '8192', '262144', '16777215', '16777216', '0x10', ''),
    fc.nat().map(String),
    fc.string({ maxLength: 12 }),
  );
  const stage = fc.constantFrom('security' as const, 'operational' as const, 'full-feature' as const);

  it('never throws on random key/value sets over several requests, and answers only keys it was sent', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.array(fc.tuple(key, value), { maxLength: 12 }), stage), { maxLength: 5 }), fc.boolean(), (requests, leading) => {
        const n = new Negotiator(DEFAULT_TARGET_PARAMS, { leading });
        for (const [pairs, st] of requests) {
          const o = n.process(pairs, st);
          if (!o.ok) {
            expect(o.reason.length).toBeGreaterThan(0);
            break;
          }
          const sent = new Set(pairs.map(([k]) => k));
          for (const [k] of o.response) expect(sent.has(k)).toBe(true);
          n.targetOffers();
        }
        const r = n.result();
        expect(r.firstBurstLength).toBeLessThanOrEqual(r.maxBurstLength);
        expect(r.errorRecoveryLevel).toBe(0);
        expect(r.maxConnections).toBe(1);
      }),
      { numRuns: 1000 },
    );
  });
});
