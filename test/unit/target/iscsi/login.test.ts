import { createHash } from 'node:crypto';
import fc from 'fast-check';
import type { ChapCredentials } from '../../../../src/target/iscsi/chap';
import {
  LoginMachine,
  LoginStatus,
  loginStatusName,
  type LoginConfig,
  type LoginRequest,
  type LoginResponse,
  type LoginTarget,
} from '../../../../src/target/iscsi/login';
import { DEFAULT_TARGET_PARAMS } from '../../../../src/target/iscsi/negotiation';
import { encodeTextData, parseTextPairs, type TextPair } from '../../../../src/target/iscsi/text';
import { LIBISCSI_1_19_LEADING_LOGIN, LIBISCSI_1_19_OPERATIONAL, LIBISCSI_INITIATOR, TARGET } from './fixtures';

const ISID = Buffer.from('80123456789a', 'hex'); // T=10b "random" (RFC 7143 11.12.5), as libiscsi makes them
const CHAP_TARGET = 'iqn.2026-11.test:chap';
const MUTUAL_TARGET = 'iqn.2026-11.test:mutual';
const ACL_TARGET = 'iqn.2026-11.test:acl';
const ONE_WAY: ChapCredentials = { user: 'alice', secret: 'initiator-secret-1' };
const MUTUAL: ChapCredentials = { ...ONE_WAY, mutualUser: MUTUAL_TARGET, mutualSecret: 'target-secret-22' };

const TARGETS = new Map<string, LoginTarget>([
  [TARGET, { name: TARGET, portalGroupTag: 1 }],
  [CHAP_TARGET, { name: CHAP_TARGET, portalGroupTag: 2, alias: 'chap disk', auth: ONE_WAY }],
  [MUTUAL_TARGET, { name: MUTUAL_TARGET, portalGroupTag: 3, auth: MUTUAL }],
  [ACL_TARGET, { name: ACL_TARGET, portalGroupTag: 4, auth: ONE_WAY, allowInitiator: (n) => n === 'iqn.2026-11.test:allowed' }],
]);

/** A deterministic random source: bytes counting up from `start`. */
function counter(start: number): (n: number) => Buffer {
  let next = start;
  return (n) => Buffer.from(Array.from({ length: n }, () => next++ & 0xff));
}

function machine(extra: Partial<LoginConfig> = {}): LoginMachine {
  return new LoginMachine({ targetLookup: (name) => TARGETS.get(name), random: counter(0x40), ...extra });
}

/** A Login Request with libiscsi's fixed fields; `text` as pairs or as raw text data. */
function req(fields: Partial<Omit<LoginRequest, 'text'>> & { text?: ReadonlyArray<readonly [string, string]> | Buffer }): LoginRequest {
  const { text, ...rest } = fields;
  return {
    csg: 0,
    nsg: 1,
    transit: false,
    continue: false,
    isid: ISID,
    tsih: 0,
    cid: 0,
    cmdSN: 0x1000,
    expStatSN: 0,
    itt: 0x2000,
    versionMax: 0,
    versionMin: 0,
    ...rest,
    text: text === undefined ? [] : Buffer.isBuffer(text) ? parseTextPairs(text) : text,
  };
}

function expectStatus(r: LoginResponse, status: { class: number; detail: number }): void {
  expect({ status: loginStatusName(r.status), reason: r.reason }).toEqual({ status: loginStatusName(status), reason: expect.any(String) });
}

function expectSuccess(r: LoginResponse): void {
  if (r.status.class !== 0) throw new Error(`login rejected: ${loginStatusName(r.status)}: ${r.reason}`);
}

/** libiscsi's md5 CHAP_R, computed here independently: uppercase hex, as its i2h() writes it. */
function libiscsiChapR(id: number, secret: string, challenge: Buffer): string {
  return `0x${createHash('md5').update(Buffer.of(id)).update(secret).update(challenge).digest('hex').toUpperCase()}`;
}

function challengeOf(r: LoginResponse): { id: number; c: Buffer } {
  const m = new Map(r.text);
  return { id: Number(m.get('CHAP_I')), c: Buffer.from(m.get('CHAP_C')!.slice(2), 'hex') };
}

/** Runs libiscsi's CHAP dialogue (lib/login.c) up to the security stage's end; returns the responses. */
function libiscsiChap(m: LoginMachine, target: string, secret: string, mutual?: { id: number; c: Buffer }): LoginResponse[] {
  const r1 = m.step(
    req({
      csg: 0,
      nsg: 1,
      transit: true, // libiscsi sets T=1 while offering CHAP
      text: [
        ['InitiatorName', LIBISCSI_INITIATOR],
        ['TargetName', target],
        ['SessionType', 'Normal'],
        ['AuthMethod', 'CHAP,None'],
      ],
    }),
  );
  if (r1.status.class !== 0) return [r1];
  const r2 = m.step(req({ csg: 0, nsg: 1, transit: false, text: [['CHAP_A', '5']] }));
  if (r2.status.class !== 0) return [r1, r2];
  const { id, c } = challengeOf(r2);
  const text: TextPair[] = [
    ['CHAP_N', 'alice'],
    ['CHAP_R', libiscsiChapR(id, secret, c)],
  ];
  if (mutual) text.push(['CHAP_I', String(mutual.id)], ['CHAP_C', `0x${mutual.c.toString('hex').toUpperCase()}`]);
  const r3 = m.step(req({ csg: 0, nsg: 1, transit: true, text }));
  return [r1, r2, r3];
}

const OPERATIONAL_ANSWERS: TextPair[] = [
  ['HeaderDigest', 'None'],
  ['DataDigest', 'None'],
  ['InitialR2T', 'Yes'],
  ['ImmediateData', 'Yes'],
  ['MaxBurstLength', '262144'],
  ['FirstBurstLength', '65536'],
  ['DefaultTime2Wait', '2'],
  ['DefaultTime2Retain', '0'],
  ['MaxOutstandingR2T', '1'],
  ['ErrorRecoveryLevel', '0'],
  ['IFMarker', 'No'],
  ['OFMarker', 'No'],
  ['MaxConnections', '1'],
  ['DataPDUInOrder', 'Yes'],
  ['DataSequenceInOrder', 'Yes'],
  ['MaxRecvDataSegmentLength', '262144'],
];

describe('login without authentication (libiscsi 1.19, one request)', () => {
  it('completes the leading login in one exchange and says what was agreed', () => {
    const m = machine();
    const r = m.step(req({ csg: 1, nsg: 3, transit: true, text: LIBISCSI_1_19_LEADING_LOGIN }));
    expectSuccess(r);
    expect(r).toMatchObject({ status: LoginStatus.SUCCESS, csg: 1, nsg: 3, transit: true, versionMax: 0, versionActive: 0 });
    // The whole response data segment, as the connection layer will send it.
    expect(encodeTextData(r.text).toString('latin1')).toBe(
      [...OPERATIONAL_ANSWERS, ['TargetPortalGroupTag', '1']].map(([k, v]) => `${k}=${v}\0`).join(''),
    );
    expect(r.done).toMatchObject({
      sessionType: 'Normal',
      initiatorName: LIBISCSI_INITIATOR,
      targetName: TARGET,
      authMethod: 'None',
      mutualChap: false,
      tsih: 0,
      cid: 0,
      leading: true,
      negotiated: {
        headerDigest: 'None',
        dataDigest: 'None',
        targetMaxRecvDataSegmentLength: 262144,
        initiatorMaxRecvDataSegmentLength: 262144,
        maxBurstLength: 262144,
        firstBurstLength: 65536,
        initialR2T: true,
        immediateData: true,
      },
    });
    expect(r.done!.isid.equals(ISID)).toBe(true);
    expect(m.finished).toBe(true);
  });

  it('takes the operational keys over several requests and transits only when asked', () => {
    const m = machine();
    const r1 = m.step(req({ csg: 1, nsg: 3, transit: false, text: [['InitiatorName', LIBISCSI_INITIATOR], ['TargetName', TARGET], ['HeaderDigest', 'CRC32C']] }));
    expectSuccess(r1);
    // T=0 in the request: the target must not transit (RFC 7143 11.13).
    expect(r1).toMatchObject({ transit: false, nsg: 0 });
    // Our declaration goes out at once; proposals would wait for T=1.
    expect(r1.text).toEqual([['HeaderDigest', 'CRC32C'], ['MaxRecvDataSegmentLength', '262144'], ['TargetPortalGroupTag', '1']]);
    const r2 = m.step(req({ csg: 1, nsg: 3, transit: true, text: [['DataDigest', 'CRC32C']] }));
    expectSuccess(r2);
    expect(r2).toMatchObject({ transit: true, nsg: 3 });
    expect(r2.text).toEqual([['DataDigest', 'CRC32C']]);
    expect(r2.done!.negotiated).toMatchObject({ headerDigest: 'CRC32C', dataDigest: 'CRC32C', initiatorMaxRecvDataSegmentLength: 8192 });
  });

  it('goes through an explicit security stage with AuthMethod=None', () => {
    const m = machine();
    const r1 = m.step(req({ csg: 0, nsg: 1, transit: true, text: [['InitiatorName', LIBISCSI_INITIATOR], ['TargetName', TARGET], ['AuthMethod', 'None']] }));
    expectSuccess(r1);
    expect(r1).toMatchObject({ csg: 0, nsg: 1, transit: true });
    expect(r1.text).toEqual([['AuthMethod', 'None'], ['TargetPortalGroupTag', '1']]);
    const r2 = m.step(req({ csg: 1, nsg: 3, transit: true, text: LIBISCSI_1_19_OPERATIONAL }));
    expectSuccess(r2);
    expect(r2.text).toEqual(OPERATIONAL_ANSWERS);
    expect(r2.done!.authMethod).toBe('None');
  });

  it('accepts libiscsi offering CHAP,None to a target without CHAP, and its re-declared names', () => {
    // libiscsi with a user set offers CHAP,None; on AuthMethod=None it stays in its first
    // security phase and sends InitiatorName/TargetName/SessionType again with the operational keys.
    const m = machine();
    const first: TextPair[] = [['InitiatorName', LIBISCSI_INITIATOR], ['TargetName', TARGET], ['SessionType', 'Normal']];
    const r1 = m.step(req({ csg: 0, nsg: 1, transit: true, text: [...first, ['AuthMethod', 'CHAP,None']] }));
    expect(r1.text[0]).toEqual(['AuthMethod', 'None']);
    expect(r1.transit).toBe(true);
    const r2 = m.step(req({ csg: 1, nsg: 3, transit: true, text: [...first, ...LIBISCSI_1_19_OPERATIONAL] }));
    expectSuccess(r2);
    expect(r2.done!.authMethod).toBe('None');
  });

  it('answers NSG=1 to an initiator skipping the operational stage, to declare MaxRecvDataSegmentLength', () => {
    const m = machine();
    const r1 = m.step(req({ csg: 0, nsg: 3, transit: true, text: [['InitiatorName', LIBISCSI_INITIATOR], ['TargetName', TARGET]] }));
    expectSuccess(r1);
    expect(r1).toMatchObject({ csg: 0, nsg: 1, transit: true });
    const r2 = m.step(req({ csg: 1, nsg: 3, transit: true }));
    expectSuccess(r2);
    expect(r2.text).toEqual([['MaxRecvDataSegmentLength', '262144']]);
    expect(r2.done!.negotiated.targetMaxRecvDataSegmentLength).toBe(262144);
  });

  it('goes straight to full feature phase from security when nothing is left to declare', () => {
    const m = machine({ params: { ...DEFAULT_TARGET_PARAMS, maxRecvDataSegmentLength: 8192 } });
    const r1 = m.step(req({ csg: 0, nsg: 3, transit: true, text: [['InitiatorName', LIBISCSI_INITIATOR], ['TargetName', TARGET]] }));
    expectSuccess(r1);
    expect(r1).toMatchObject({ csg: 0, nsg: 3, transit: true, text: [['TargetPortalGroupTag', '1']] });
    expect(r1.done).toMatchObject({ authMethod: 'None', negotiated: { targetMaxRecvDataSegmentLength: 8192, initiatorMaxRecvDataSegmentLength: 8192 } });
  });

  it('proposes the keys whose default we cannot accept, then waits for the answers', () => {
    const m = machine({ params: { ...DEFAULT_TARGET_PARAMS, immediateData: false, headerDigest: ['CRC32C'] } });
    const r1 = m.step(req({ csg: 1, nsg: 3, transit: true, text: [['InitiatorName', LIBISCSI_INITIATOR], ['TargetName', TARGET]] }));
    expectSuccess(r1);
    expect(r1).toMatchObject({ transit: false });
    expect(r1.text).toEqual([['MaxRecvDataSegmentLength', '262144'], ['HeaderDigest', 'CRC32C'], ['ImmediateData', 'No'], ['TargetPortalGroupTag', '1']]);
    const r2 = m.step(req({ csg: 1, nsg: 3, transit: true, text: [['HeaderDigest', 'CRC32C'], ['ImmediateData', 'No']] }));
    expectSuccess(r2);
    expect(r2).toMatchObject({ transit: true, nsg: 3, text: [] });
    expect(r2.done!.negotiated).toMatchObject({ headerDigest: 'CRC32C', immediateData: false });
  });

  it('gathers text continued with the C bit and answers each continuation empty', () => {
    const m = machine();
    const all = parseTextPairs(LIBISCSI_1_19_LEADING_LOGIN);
    const r1 = m.step(req({ csg: 1, nsg: 3, transit: false, continue: true, text: all.slice(0, 5) }));
    expectSuccess(r1);
    expect(r1).toMatchObject({ transit: false, text: [] });
    const r2 = m.step(req({ csg: 1, nsg: 3, transit: true, text: all.slice(5) }));
    expectSuccess(r2);
    expect(r2.done).toBeDefined();
    expect(r2.text).toContainEqual(['HeaderDigest', 'None']);
  });
});

describe('login with CHAP (libiscsi lib/login.c dialogue)', () => {
  it('one-way CHAP: AuthMethod, challenge, response, then operational', () => {
    const m = machine();
    const [r1, r2, r3] = libiscsiChap(m, CHAP_TARGET, 'initiator-secret-1');
    expectSuccess(r1);
    // CHAP chosen: authentication must go on, so no transit despite T=1 (RFC 7143 12.1.3).
    expect(r1).toMatchObject({ csg: 0, transit: false });
    expect(r1.text).toEqual([['AuthMethod', 'CHAP'], ['TargetAlias', 'chap disk'], ['TargetPortalGroupTag', '2']]);
    expectSuccess(r2);
    expect(r2).toMatchObject({ csg: 0, transit: false });
    expect(r2.text).toEqual([
      ['CHAP_A', '5'],
      ['CHAP_I', String(0x40)],
      ['CHAP_C', `0x${Buffer.from([...Array(16).keys()].map((i) => 0x41 + i)).toString('hex')}`],
    ]);
    expectSuccess(r3);
    expect(r3).toMatchObject({ csg: 0, nsg: 1, transit: true, text: [] });
    const r4 = m.step(req({ csg: 1, nsg: 3, transit: true, text: LIBISCSI_1_19_OPERATIONAL }));
    expectSuccess(r4);
    expect(r4.text).toEqual(OPERATIONAL_ANSWERS);
    expect(r4.done).toMatchObject({ authMethod: 'CHAP', chapUser: 'alice', mutualChap: false, targetName: CHAP_TARGET });
  });

  it('mutual CHAP: the target answers the initiator challenge with CHAP_N and CHAP_R', () => {
    const m = machine();
    const c2 = Buffer.from([...Array(32).keys()].map((i) => (i * 7 + 3) & 0xff)); // libiscsi: 2 x digest length
    const [, , r3] = libiscsiChap(m, MUTUAL_TARGET, 'initiator-secret-1', { id: 1, c: c2 });
    expectSuccess(r3);
    expect(r3).toMatchObject({ csg: 0, nsg: 1, transit: true });
    const expected = createHash('md5').update(Buffer.of(1)).update('target-secret-22').update(c2).digest('hex');
    expect(r3.text).toEqual([['CHAP_N', MUTUAL_TARGET], ['CHAP_R', `0x${expected}`]]);
    const r4 = m.step(req({ csg: 1, nsg: 3, transit: true, text: LIBISCSI_1_19_OPERATIONAL }));
    expect(r4.done).toMatchObject({ authMethod: 'CHAP', mutualChap: true });
  });

  it('a wrong secret fails authentication (0201h), and the login stays failed', () => {
    const m = machine();
    const [r1, r2, r3] = libiscsiChap(m, CHAP_TARGET, 'not-the-secret!!');
    expectSuccess(r1);
    expectSuccess(r2);
    expectStatus(r3, LoginStatus.AUTHENTICATION_FAILURE);
    expect(r3).toMatchObject({ transit: false, text: [] });
    expect(m.finished).toBe(true);
    expectStatus(m.step(req({ csg: 1, nsg: 3, transit: true, text: LIBISCSI_1_19_OPERATIONAL })), LoginStatus.AUTHENTICATION_FAILURE);
  });

  it('a reflected challenge fails authentication', () => {
    const m = machine();
    const r1 = m.step(req({ transit: true, text: [['InitiatorName', LIBISCSI_INITIATOR], ['TargetName', MUTUAL_TARGET], ['AuthMethod', 'CHAP']] }));
    expectSuccess(r1);
    const r2 = m.step(req({ text: [['CHAP_A', '5']] }));
    const { id, c } = challengeOf(r2);
    const r3 = m.step(
      req({ transit: true, text: [['CHAP_N', 'alice'], ['CHAP_R', libiscsiChapR(id, 'initiator-secret-1', c)], ['CHAP_I', String(id)], ['CHAP_C', `0x${c.toString('hex')}`]] }),
    );
    expectStatus(r3, LoginStatus.AUTHENTICATION_FAILURE);
    expect(r3.reason).toMatch(/reflected/);
  });

  it('mutual CHAP asked of a target without mutual credentials fails authentication', () => {
    const [, , r3] = libiscsiChap(machine(), CHAP_TARGET, 'initiator-secret-1', { id: 1, c: Buffer.alloc(32, 9) });
    expectStatus(r3, LoginStatus.AUTHENTICATION_FAILURE);
  });

  it('accepts CHAP_A lists and base64 responses, refuses CHAP_A=56 and CHAP_A= (libiscsi iSCSICHAP tests)', () => {
    for (const [chapA, good] of [['5,6,7,8', true], ['7,5', true], ['56', false], ['', false]] as const) {
      const m = machine();
      m.step(req({ transit: true, text: [['InitiatorName', LIBISCSI_INITIATOR], ['TargetName', CHAP_TARGET], ['AuthMethod', 'CHAP,None']] }));
      const r2 = m.step(req({ text: [['CHAP_A', chapA]] }));
      if (!good) {
        expectStatus(r2, LoginStatus.AUTHENTICATION_FAILURE);
        continue;
      }
      const a = Number(new Map(r2.text).get('CHAP_A'));
      const hash = a === 7 ? 'sha256' : 'md5';
      const { id, c } = challengeOf(r2);
      const resp = createHash(hash).update(Buffer.of(id)).update('initiator-secret-1').update(c).digest('base64');
      const r3 = m.step(req({ transit: true, text: [['CHAP_N', 'alice'], ['CHAP_R', `0b${resp}`]] }));
      expectSuccess(r3);
      expect(a).toBe(chapA === '7,5' ? 7 : 5);
    }
  });

  it('refuses an initiator that skips security negotiation when CHAP is required', () => {
    const r = machine().step(req({ csg: 1, nsg: 3, transit: true, text: [['InitiatorName', LIBISCSI_INITIATOR], ['TargetName', CHAP_TARGET]] }));
    expectStatus(r, LoginStatus.AUTHENTICATION_FAILURE);
  });

  it('refuses AuthMethod=None when CHAP is required, and a transit before authenticating', () => {
    expectStatus(
      machine().step(req({ transit: true, text: [['InitiatorName', LIBISCSI_INITIATOR], ['TargetName', CHAP_TARGET], ['AuthMethod', 'None']] })),
      LoginStatus.AUTHENTICATION_FAILURE,
    );
    expectStatus(machine().step(req({ transit: true, text: [['InitiatorName', LIBISCSI_INITIATOR], ['TargetName', CHAP_TARGET]] })), LoginStatus.AUTHENTICATION_FAILURE);
    const m = machine();
    m.step(req({ transit: true, text: [['InitiatorName', LIBISCSI_INITIATOR], ['TargetName', CHAP_TARGET], ['AuthMethod', 'CHAP']] }));
    expectStatus(m.step(req({ transit: true })), LoginStatus.AUTHENTICATION_FAILURE);
  });

  it('waits while the initiator sends nothing with T=0 mid-exchange', () => {
    const m = machine();
    m.step(req({ transit: true, text: [['InitiatorName', LIBISCSI_INITIATOR], ['TargetName', CHAP_TARGET], ['AuthMethod', 'CHAP']] }));
    const r = m.step(req({ transit: false }));
    expectSuccess(r);
    expect(r).toMatchObject({ transit: false, text: [] });
  });

  it('refuses CHAP keys out of order or without AuthMethod=CHAP, and security keys after security', () => {
    const base: TextPair[] = [['InitiatorName', LIBISCSI_INITIATOR], ['TargetName', CHAP_TARGET]];
    expectStatus(machine().step(req({ text: [...base, ['CHAP_A', '5']] })), LoginStatus.INITIATOR_ERROR);
    const m = machine();
    m.step(req({ text: [...base, ['AuthMethod', 'CHAP']] }));
    expectStatus(m.step(req({ text: [['CHAP_N', 'alice'], ['CHAP_R', '0x00']] })), LoginStatus.AUTHENTICATION_FAILURE);
    const n = machine();
    n.step(req({ text: [...base, ['AuthMethod', 'CHAP']] }));
    expectStatus(n.step(req({ text: [['AuthMethod', 'CHAP']] })), LoginStatus.INITIATOR_ERROR);
    const o = machine();
    o.step(req({ text: [...base, ['AuthMethod', 'CHAP']] }));
    expectStatus(o.step(req({ text: [['SRP_U', 'x']] })), LoginStatus.INITIATOR_ERROR);
    const p = machine();
    libiscsiChap(p, CHAP_TARGET, 'initiator-secret-1');
    expectStatus(p.step(req({ csg: 1, nsg: 3, transit: true, text: [['CHAP_A', '5']] })), LoginStatus.INITIATOR_ERROR);
  });

  it('uses per-initiator credentials, and fails authentication when there are none', () => {
    const perAcl = new Map([[LIBISCSI_INITIATOR, ONE_WAY]]);
    const target: LoginTarget = { name: TARGET, portalGroupTag: 1, auth: (initiator) => perAcl.get(initiator) };
    const [, , r3] = libiscsiChap(machine({ targetLookup: () => target }), TARGET, 'initiator-secret-1');
    expectSuccess(r3);
    perAcl.clear();
    const [r1] = libiscsiChap(machine({ targetLookup: () => target }), TARGET, 'initiator-secret-1');
    expectStatus(r1, LoginStatus.AUTHENTICATION_FAILURE);
  });

  it('warns about short secrets and refuses one secret for both directions (target error)', () => {
    const warnings: string[] = [];
    const short: LoginTarget = { name: TARGET, portalGroupTag: 1, auth: { user: 'alice', secret: 'password' } };
    const [, , r3] = libiscsiChap(machine({ targetLookup: () => short, warn: (w) => warnings.push(w) }), TARGET, 'password');
    expectSuccess(r3);
    expect(warnings).toEqual([expect.stringMatching(/8 bytes/)]);
    const same: LoginTarget = { name: TARGET, portalGroupTag: 1, auth: { user: 'a', secret: 'same-secret-123', mutualUser: 't', mutualSecret: 'same-secret-123' } };
    const [r1] = libiscsiChap(machine({ targetLookup: () => same }), TARGET, 'same-secret-123');
    expectStatus(r1, LoginStatus.TARGET_ERROR);
  });
});

describe('who may log in where', () => {
  it('an unknown target is not found (0203h)', () => {
    const r = machine().step(req({ csg: 1, nsg: 3, transit: true, text: [['InitiatorName', LIBISCSI_INITIATOR], ['TargetName', 'iqn.2026-11.test:nope']] }));
    expectStatus(r, LoginStatus.NOT_FOUND);
  });

  it('InitiatorName is required in the first request (0207h)', () => {
    expectStatus(machine().step(req({ csg: 1, nsg: 3, transit: true, text: [['TargetName', TARGET]] })), LoginStatus.MISSING_PARAMETER);
    expectStatus(machine().step(req({ text: [['InitiatorName', ''], ['TargetName', TARGET]] })), LoginStatus.MISSING_PARAMETER);
  });

  it('TargetName is required for a Normal session (0207h), not for discovery', () => {
    expectStatus(machine().step(req({ csg: 1, nsg: 3, transit: true, text: [['InitiatorName', LIBISCSI_INITIATOR]] })), LoginStatus.MISSING_PARAMETER);
  });

  it('the ACL is checked once authenticated (0202h)', () => {
    const [, , denied] = libiscsiChap(machine(), ACL_TARGET, 'initiator-secret-1');
    expectStatus(denied, LoginStatus.AUTHORIZATION_FAILURE);
    const open: LoginTarget = { name: TARGET, portalGroupTag: 1, allowInitiator: (n) => n === 'iqn.2026-11.test:allowed' };
    const r = machine({ targetLookup: () => open }).step(req({ csg: 1, nsg: 3, transit: true, text: LIBISCSI_1_19_LEADING_LOGIN }));
    expectStatus(r, LoginStatus.AUTHORIZATION_FAILURE);
    const ok = machine({ targetLookup: () => open }).step(
      req({ csg: 1, nsg: 3, transit: true, text: [['InitiatorName', 'iqn.2026-11.test:allowed'], ['TargetName', TARGET]] }),
    );
    expectSuccess(ok);
  });

  it('a discovery session needs no TargetName; session keys are Irrelevant; no portal group tag', () => {
    const text = parseTextPairs(LIBISCSI_1_19_LEADING_LOGIN).filter(([k]) => k !== 'TargetName');
    text[1] = ['SessionType', 'Discovery'];
    const r = machine().step(req({ csg: 1, nsg: 3, transit: true, text }));
    expectSuccess(r);
    const answers = new Map(r.text);
    expect(answers.get('MaxBurstLength')).toBe('Irrelevant');
    expect(answers.get('InitialR2T')).toBe('Irrelevant');
    expect(answers.get('HeaderDigest')).toBe('None');
    expect(answers.has('TargetPortalGroupTag')).toBe(false);
    expect(r.done).toMatchObject({ sessionType: 'Discovery', targetName: undefined, authMethod: 'None' });
  });

  it('discovery sessions use discovery_auth CHAP when configured', () => {
    const m = machine({ discoveryAuth: ONE_WAY });
    expectStatus(
      machine({ discoveryAuth: ONE_WAY }).step(req({ csg: 1, nsg: 3, transit: true, text: [['InitiatorName', LIBISCSI_INITIATOR], ['SessionType', 'Discovery']] })),
      LoginStatus.AUTHENTICATION_FAILURE,
    );
    const r1 = m.step(req({ transit: true, text: [['InitiatorName', LIBISCSI_INITIATOR], ['SessionType', 'Discovery'], ['AuthMethod', 'CHAP,None']] }));
    expect(r1.text).toEqual([['AuthMethod', 'CHAP']]);
    const { id, c } = challengeOf(m.step(req({ text: [['CHAP_A', '5']] })));
    expectSuccess(m.step(req({ transit: true, text: [['CHAP_N', 'alice'], ['CHAP_R', libiscsiChapR(id, 'initiator-secret-1', c)]] })));
    expect(m.step(req({ csg: 1, nsg: 3, transit: true })).done).toMatchObject({ sessionType: 'Discovery', authMethod: 'CHAP' });
  });

  it('refuses session types that do not exist or are switched off (0209h)', () => {
    expectStatus(machine().step(req({ text: [['InitiatorName', LIBISCSI_INITIATOR], ['SessionType', 'Boot']] })), LoginStatus.SESSION_TYPE_NOT_SUPPORTED);
    expectStatus(
      machine({ discovery: false }).step(req({ text: [['InitiatorName', LIBISCSI_INITIATOR], ['SessionType', 'Discovery']] })),
      LoginStatus.SESSION_TYPE_NOT_SUPPORTED,
    );
  });

  it('a non-zero TSIH must name an existing session (020Ah); such a login is not leading', () => {
    const first: TextPair[] = [['InitiatorName', LIBISCSI_INITIATOR], ['TargetName', TARGET]];
    expectStatus(machine().step(req({ csg: 1, nsg: 3, transit: true, tsih: 7, text: first })), LoginStatus.SESSION_DOES_NOT_EXIST);
    const seen: unknown[] = [];
    const sessionExists: LoginConfig['sessionExists'] = (s) => {
      seen.push(s);
      return s.tsih === 7;
    };
    expectStatus(machine({ sessionExists }).step(req({ csg: 1, nsg: 3, transit: true, tsih: 8, text: first })), LoginStatus.SESSION_DOES_NOT_EXIST);
    const r = machine({ sessionExists }).step(req({ csg: 1, nsg: 3, transit: true, tsih: 7, cid: 1, text: [...first, ['HeaderDigest', 'CRC32C']] }));
    expectSuccess(r);
    expect(r.done).toMatchObject({ tsih: 7, cid: 1, leading: false, negotiated: { headerDigest: 'CRC32C' } });
    expect(seen).toEqual([
      { isid: ISID, tsih: 8, initiatorName: LIBISCSI_INITIATOR, targetName: TARGET },
      { isid: ISID, tsih: 7, initiatorName: LIBISCSI_INITIATOR, targetName: TARGET },
    ]);
    // Leading-only keys on a connection joining a session are a protocol error.
    expectStatus(machine({ sessionExists }).step(req({ csg: 1, nsg: 3, transit: true, tsih: 7, text: [...first, ['MaxBurstLength', '8192']] })), LoginStatus.INITIATOR_ERROR);
  });
});

describe('login PDU rules', () => {
  const first: TextPair[] = [['InitiatorName', LIBISCSI_INITIATOR], ['TargetName', TARGET]];

  it('speaks version 0 only (0205h)', () => {
    expectStatus(machine().step(req({ versionMin: 1, versionMax: 2, text: first })), LoginStatus.UNSUPPORTED_VERSION);
    expectSuccess(machine().step(req({ versionMin: 0, versionMax: 5, text: first })));
  });

  it('checks the fixed fields across C-bit continuations of the first request too', () => {
    const m = machine();
    expectSuccess(m.step(req({ continue: true, text: first })));
    expectStatus(m.step(req({ itt: 0x2001 })), LoginStatus.INITIATOR_ERROR);
  });

  it('refuses requests whose fixed fields change during the login', () => {
    const changes: Array<Partial<Omit<LoginRequest, 'text'>>> = [
      { isid: Buffer.from('80123456789b', 'hex') },
      { itt: 0x2001 },
      { cid: 1 },
      { versionMax: 1 },
    ];
    for (const change of changes) {
      const m = machine();
      expectSuccess(m.step(req({ text: first })));
      expectStatus(m.step(req({ ...change })), LoginStatus.INITIATOR_ERROR);
    }
  });

  it('refuses bad stage flags: C with T, NSG 2, a backwards transit, a wrong CSG, CSG 3', () => {
    const bad: Array<Partial<Omit<LoginRequest, 'text'>>> = [
      { continue: true, transit: true },
      { transit: true, nsg: 2 },
      { csg: 1, nsg: 0, transit: true },
      { csg: 1, nsg: 1, transit: true },
      { csg: 3, nsg: 3 },
    ];
    for (const b of bad) expectStatus(machine().step(req({ text: first, ...b })), LoginStatus.INITIATOR_ERROR);
    const m = machine();
    expectSuccess(m.step(req({ csg: 0, text: first })));
    expectStatus(m.step(req({ csg: 1, nsg: 3, transit: true })), LoginStatus.INITIATOR_ERROR); // never transited
  });

  it('refuses a key twice in one request and malformed keys', () => {
    expectStatus(machine().step(req({ text: [...first, ['InitiatorName', 'x']] })), LoginStatus.INITIATOR_ERROR);
    expectStatus(machine().step(req({ text: [...first, ['bad key', 'x']] })), LoginStatus.INITIATOR_ERROR);
  });

  it('refuses a request after the login completed', () => {
    const m = machine();
    expectSuccess(m.step(req({ csg: 1, nsg: 3, transit: true, text: first })));
    expectStatus(m.step(req({ csg: 1, nsg: 3, transit: true })), LoginStatus.INITIATOR_ERROR);
  });

  it('gives up after maxRequests', () => {
    const m = machine({ maxRequests: 3 });
    expectSuccess(m.step(req({ text: first })));
    expectSuccess(m.step(req({})));
    expectSuccess(m.step(req({})));
    expectStatus(m.step(req({})), LoginStatus.INITIATOR_ERROR);
  });

  it('turns an exception in a callback into a target error (0300h)', () => {
    const m = machine({
      targetLookup: () => {
        throw new Error('config store unavailable');
      },
    });
    const r = m.step(req({ text: first }));
    expectStatus(r, LoginStatus.TARGET_ERROR);
    expect(r.reason).toMatch(/config store unavailable/);
  });

  it('lets the connection layer refuse malformed login text, and stays refused', () => {
    const m = machine();
    expectSuccess(m.step(req({ text: first })));
    const r = m.refuse('iSCSI text data: key=value pair without "=" (byte 12)');
    expectStatus(r, LoginStatus.INITIATOR_ERROR);
    expect(r).toMatchObject({ csg: 0, transit: false, text: [] });
    expect(m.finished).toBe(true);
    expect(m.step(req({})).reason).toBe(r.reason);
    expect(m.refuse('again').reason).toBe(r.reason);
  });

  it('names statuses for logs', () => {
    expect(loginStatusName(LoginStatus.AUTHENTICATION_FAILURE)).toBe('authentication failure (0201h)');
    expect(loginStatusName(LoginStatus.SESSION_DOES_NOT_EXIST)).toBe('session does not exist (020ah)');
    expect(loginStatusName({ class: 9, detail: 9 })).toBe('unknown status (0909h)');
  });
});

describe('robustness', () => {
  const targetNames = [TARGET, CHAP_TARGET, MUTUAL_TARGET, ACL_TARGET, 'iqn.2026-11.test:nope'];
  const pair: fc.Arbitrary<TextPair> = fc.oneof(
    fc.tuple(fc.constant('InitiatorName'), fc.constantFrom(LIBISCSI_INITIATOR, 'iqn.2026-11.test:allowed', '')),
    fc.tuple(fc.constant('TargetName'), fc.constantFrom(...targetNames)),
    fc.tuple(fc.constant('SessionType'), fc.constantFrom('Normal', 'Discovery', 'Boot')),
    fc.tuple(fc.constant('AuthMethod'), fc.constantFrom('CHAP,None', 'None', 'CHAP', 'SRP', '')),
    fc.tuple(fc.constantFrom('CHAP_A', 'CHAP_I', 'CHAP_C', 'CHAP_N', 'CHAP_R'), fc.constantFrom('5', '0x00', 'alice', '0b AA', '7,5', '')),
    fc.constantFrom(...LIBISCSI_1_19_OPERATIONAL),
    fc.tuple(fc.constantFrom('X-a', 'Foo', 'SendTargets', 'TargetPortalGroupTag', 'MaxRecvDataSegmentLength'), fc.string({ maxLength: 8 })),
  );
  const request: fc.Arbitrary<LoginRequest> = fc
    .record({
      csg: fc.integer({ min: 0, max: 3 }),
      nsg: fc.integer({ min: 0, max: 3 }),
      transit: fc.boolean(),
      continue: fc.boolean(),
      tsih: fc.constantFrom(0, 0, 0, 5),
      versionMin: fc.constantFrom(0, 0, 1),
      text: fc.uniqueArray(pair, { selector: ([k]) => k, maxLength: 8 }),
    })
    .map((r) => req(r));

  it('random request sequences never throw: every step answers success or a login reject', () => {
    fc.assert(
      fc.property(fc.array(request, { minLength: 1, maxLength: 8 }), fc.boolean(), (requests, withDiscoveryAuth) => {
        const m = machine({ discoveryAuth: withDiscoveryAuth ? ONE_WAY : undefined, sessionExists: (s) => s.tsih === 5 });
        let failed = false;
        for (const r of requests) {
          const res = m.step(r);
          expect([0, 2, 3]).toContain(res.status.class);
          if (res.status.class !== 0) {
            expect(res.reason).toEqual(expect.any(String));
            expect(res.transit).toBe(false);
            failed = true;
          } else {
            expect(failed).toBe(false); // a failed login stays failed
            if (res.transit) expect(r.transit).toBe(true); // never transit unless asked
            if (res.done) expect(res.nsg).toBe(3);
            expect(() => encodeTextData(res.text)).not.toThrow();
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});
