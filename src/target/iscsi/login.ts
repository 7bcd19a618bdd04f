/**
 * The login phase of one connection, target side (RFC 7143 6.3, 11.12, 11.13), as a pure
 * reducer: the connection layer feeds each Login Request (its text already gathered and parsed)
 * to {@link LoginMachine.step} and builds the Login Response PDU from what comes back. No
 * sockets, no timers, no TSIH allocation: when `done` is set, the connection layer assigns the
 * TSIH of a new session (TSIH 0 in the request), handles session reinstatement (same ISID), sets
 * StatSN/ExpCmdSN/MaxCmdSN, and enters full feature phase.
 *
 * Stages: the initiator starts in security negotiation (CSG 0) or, when it does not want to
 * authenticate, directly in operational negotiation (CSG 1). A stage ends when the initiator sets
 * T=1 and the target answers T=1; the target never sets T=1 unless asked (RFC 7143 11.13), and
 * answers T=0 while it has more to say (a CHAP challenge, proposals awaiting answers).
 *
 * Never throws: a protocol violation, a failed check or an internal error comes back as a login
 * reject (a non-zero status), after which every further step returns the same reject and the
 * connection layer closes the connection (RFC 7143 11.13.5).
 */
import { ChapAuthenticator, validateChapCredentials, type ChapCredentials } from './chap';
import {
  DEFAULT_TARGET_PARAMS,
  Negotiator,
  isSecurityKey,
  validateTargetParams,
  type NegotiatedParams,
  type NegotiationFailure,
  type SessionType,
  type TargetParams,
} from './negotiation';
import { isValidKey, type TextPair } from './text';

/** CSG/NSG values (RFC 7143 11.12.3). 2 is reserved. */
export const enum LoginStage {
  SECURITY = 0,
  OPERATIONAL = 1,
  FULL_FEATURE = 3,
}

/** A Login Response Status-Class and Status-Detail (RFC 7143 11.13.5). */
export interface LoginStatusCode {
  readonly class: number;
  readonly detail: number;
}

/** RFC 7143 11.13.5, the status codes this target sends (class 1 redirects are not used). */
export const LoginStatus = {
  SUCCESS: { class: 0x00, detail: 0x00 },
  INITIATOR_ERROR: { class: 0x02, detail: 0x00 },
  AUTHENTICATION_FAILURE: { class: 0x02, detail: 0x01 },
  AUTHORIZATION_FAILURE: { class: 0x02, detail: 0x02 },
  NOT_FOUND: { class: 0x02, detail: 0x03 },
  TARGET_REMOVED: { class: 0x02, detail: 0x04 },
  UNSUPPORTED_VERSION: { class: 0x02, detail: 0x05 },
  TOO_MANY_CONNECTIONS: { class: 0x02, detail: 0x06 },
  MISSING_PARAMETER: { class: 0x02, detail: 0x07 },
  CANT_INCLUDE_IN_SESSION: { class: 0x02, detail: 0x08 },
  SESSION_TYPE_NOT_SUPPORTED: { class: 0x02, detail: 0x09 },
  SESSION_DOES_NOT_EXIST: { class: 0x02, detail: 0x0a },
  INVALID_DURING_LOGIN: { class: 0x02, detail: 0x0b },
  TARGET_ERROR: { class: 0x03, detail: 0x00 },
  SERVICE_UNAVAILABLE: { class: 0x03, detail: 0x01 },
  OUT_OF_RESOURCES: { class: 0x03, detail: 0x02 },
} as const satisfies Record<string, LoginStatusCode>;

const STATUS_NAMES = new Map<number, string>(
  Object.entries(LoginStatus).map(([name, s]) => [(s.class << 8) | s.detail, name.toLowerCase().replace(/_/g, ' ')]),
);

/** "authentication failure (0201h)", for logs. */
export function loginStatusName(s: LoginStatusCode): string {
  const code = (s.class << 8) | s.detail;
  return `${STATUS_NAMES.get(code) ?? 'unknown status'} (${code.toString(16).padStart(4, '0')}h)`;
}

/** The only iSCSI version there is (RFC 7143 11.12.4). */
export const ISCSI_VERSION = 0x00;

/** What the login needs to know of a target node and portal group. */
export interface LoginTarget {
  name: string;
  /** The portal group serving this connection, declared in the first response (13.9). */
  portalGroupTag: number;
  alias?: string;
  /**
   * CHAP required, with these credentials; a function gives per-initiator credentials (LIO's
   * node_acls chap_userid/chap_password) and returns undefined when there are none for it (the
   * login then fails authentication). Absent: no authentication (AuthMethod=None).
   */
  auth?: ChapCredentials | ((initiatorName: string) => ChapCredentials | undefined);
  /** The ACL: whether this initiator may log in. Absent: every initiator may. */
  allowInitiator?(initiatorName: string): boolean;
}

export interface LoginConfig {
  /** The target named by TargetName, or undefined (login fails with NOT_FOUND). */
  targetLookup(name: string): LoginTarget | undefined;
  /** CHAP for discovery sessions (saveconfig.json discovery_auth). Absent: none. */
  discoveryAuth?: ChapCredentials;
  /** Whether discovery sessions are served (default true). */
  discovery?: boolean;
  params?: Readonly<TargetParams>;
  /**
   * For a login with a non-zero TSIH (a connection joining or reinstating in an existing session):
   * whether that session exists for this initiator. Absent: no session exists.
   */
  sessionExists?(s: { isid: Buffer; tsih: number; initiatorName: string; targetName?: string }): boolean;
  /** CHAP algorithms we accept (default: all Node's crypto has, see chap.ts). */
  chapAlgorithms?: readonly number[];
  /** Random source for CHAP (tests inject one). */
  random?: (n: number) => Buffer;
  /** Receives configuration warnings (short CHAP secrets). */
  warn?(message: string): void;
  /** Login requests allowed before the login is abandoned (default 32). */
  maxRequests?: number;
}

/** The fields of a Login Request PDU the login phase looks at, and its gathered text. */
export interface LoginRequest {
  csg: number;
  nsg: number;
  transit: boolean;
  /** C bit. With C=1 the text continues in the next request; pass what was parsed so far, or []
   *  when the connection layer gathers the raw text itself (see text.ts TextAccumulator). */
  continue: boolean;
  /** 6 bytes. */
  isid: Buffer;
  tsih: number;
  cid: number;
  cmdSN: number;
  expStatSN: number;
  itt: number;
  versionMax: number;
  versionMin: number;
  text: ReadonlyArray<readonly [string, string]>;
}

/** What the connection runs the session with. */
export interface LoginResult {
  sessionType: SessionType;
  initiatorName: string;
  initiatorAlias?: string;
  targetName?: string;
  target?: LoginTarget;
  authMethod: 'None' | 'CHAP';
  /** The CHAP user the initiator authenticated as. */
  chapUser?: string;
  /** Whether the target authenticated itself to the initiator (mutual CHAP). */
  mutualChap: boolean;
  negotiated: NegotiatedParams;
  isid: Buffer;
  /** From the request: 0 for a new session (the connection layer assigns one). */
  tsih: number;
  cid: number;
  /** The first connection of a session (TSIH 0). */
  leading: boolean;
}

/** The fields of the Login Response PDU to send. */
export interface LoginResponse {
  status: LoginStatusCode;
  csg: number;
  /** Meaningful only with transit (RFC 7143 11.12.3); 0 otherwise. */
  nsg: number;
  transit: boolean;
  versionMax: number;
  versionActive: number;
  text: TextPair[];
  /** Why the login was rejected, for logs (never sent). */
  reason?: string;
  /** Set on the final response: enter full feature phase. */
  done?: LoginResult;
}

type State = 'new' | 'security' | 'operational' | 'done' | 'failed';

const CHAP_KEYS = new Set(['CHAP_A', 'CHAP_I', 'CHAP_C', 'CHAP_N', 'CHAP_R']);

/** The login phase of one connection. */
export class LoginMachine {
  private readonly params: Readonly<TargetParams>;
  private readonly maxRequests: number;
  private state: State = 'new';
  private stage: number = LoginStage.SECURITY;
  private requests = 0;
  private failure?: LoginResponse;
  private pending: TextPair[] = [];
  private header?: { versionMax: number; versionMin: number; isid: Buffer; tsih: number; cid: number; itt: number };

  private negotiator?: Negotiator;
  private sessionType: SessionType = 'Normal';
  private initiatorName = '';
  private target?: LoginTarget;
  private identitySent = false;

  private authRequired = false;
  private credentials?: ChapCredentials;
  private authMethod?: 'None' | 'CHAP';
  private chap?: ChapAuthenticator;
  private chapState: 'none' | 'method' | 'challenged' = 'none';
  private securityDone = false;

  constructor(private readonly cfg: LoginConfig) {
    this.params = cfg.params ?? DEFAULT_TARGET_PARAMS;
    validateTargetParams(this.params);
    this.maxRequests = cfg.maxRequests ?? 32;
  }

  /** Whether the login ended (successfully or not). */
  get finished(): boolean {
    return this.state === 'done' || this.state === 'failed';
  }

  /**
   * Ends the login with a reject the connection layer decided on, typically a DecodeError from the
   * login text (malformed pairs, over-long text): initiator error by default (RFC 7143 11.13.5).
   * Every later step returns the same reject.
   */
  refuse(reason: string, status: LoginStatusCode = LoginStatus.INITIATOR_ERROR): LoginResponse {
    if (this.state === 'failed') return this.copyOfFailure();
    return this.reject(status, reason);
  }

  /** Handles one Login Request. Never throws. */
  step(req: LoginRequest): LoginResponse {
    try {
      return this.doStep(req);
    } catch (err) {
      return this.reject(LoginStatus.TARGET_ERROR, `internal error: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  // --- the reducer ---

  private doStep(req: LoginRequest): LoginResponse {
    if (this.state === 'failed') return this.copyOfFailure();
    if (this.state === 'done') return this.reject(LoginStatus.INITIATOR_ERROR, 'Login Request after the login completed');
    if (++this.requests > this.maxRequests) {
      return this.reject(LoginStatus.INITIATOR_ERROR, `login did not complete within ${this.maxRequests} requests`);
    }
    const bad = this.checkHeader(req);
    if (bad) return bad;

    // RFC 7143 11.12.2: C=1, the text goes on in the next request; answer with an empty response.
    if (req.continue) {
      this.pending.push(...req.text.map(([k, v]): TextPair => [k, v]));
      return this.respond(req, [], false, 0);
    }
    const text: TextPair[] = [...this.pending, ...req.text.map(([k, v]): TextPair => [k, v])];
    this.pending = [];
    const seen = new Set<string>();
    for (const [key, value] of text) {
      // The connection layer parses with text.ts, so this holds; checked again because the
      // response echoes keys and must encode.
      if (typeof key !== 'string' || typeof value !== 'string' || !isValidKey(key)) {
        return this.reject(LoginStatus.INITIATOR_ERROR, `malformed key ${JSON.stringify(key)} (RFC 7143 6.1)`);
      }
      if (seen.has(key)) return this.reject(LoginStatus.INITIATOR_ERROR, `key ${key} given twice in one request (RFC 7143 6.3)`);
      seen.add(key);
    }

    if (this.state === 'new') {
      const r = this.firstRequest(req, text);
      if (r) return r;
    }
    return this.stage === LoginStage.SECURITY ? this.securityStage(req, text) : this.operationalStage(req, text);
  }

  /** Header checks (RFC 7143 11.12): flags, stages, and fields that must not change. */
  private checkHeader(req: LoginRequest): LoginResponse | undefined {
    const int = (v: unknown, max: number): boolean => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;
    if (
      !int(req.csg, 3) || !int(req.nsg, 3) || !int(req.tsih, 0xffff) || !int(req.cid, 0xffff) || !int(req.itt, 0xffffffff) ||
      !int(req.versionMax, 0xff) || !int(req.versionMin, 0xff) || !Buffer.isBuffer(req.isid) || req.isid.length !== 6 ||
      !Array.isArray(req.text)
    ) {
      return this.reject(LoginStatus.INITIATOR_ERROR, 'malformed Login Request fields');
    }
    if (this.header === undefined) {
      // RFC 7143 11.12.4: we speak version 0x00 only; Version-min above it cannot be served.
      if (req.versionMin > ISCSI_VERSION || req.versionMax < req.versionMin) {
        return this.reject(
          LoginStatus.UNSUPPORTED_VERSION,
          `initiator supports versions ${req.versionMin}..${req.versionMax}, we support ${ISCSI_VERSION}`,
        );
      }
      this.header = {
        versionMax: req.versionMax,
        versionMin: req.versionMin,
        isid: Buffer.from(req.isid),
        tsih: req.tsih,
        cid: req.cid,
        itt: req.itt,
      };
    } else {
      const h = this.header!;
      if (req.versionMax !== h.versionMax || req.versionMin !== h.versionMin) {
        return this.reject(LoginStatus.INITIATOR_ERROR, 'Version-max/Version-min changed during login (RFC 7143 11.12.4)');
      }
      if (!req.isid.equals(h.isid) || req.tsih !== h.tsih || req.cid !== h.cid) {
        return this.reject(LoginStatus.INITIATOR_ERROR, 'ISID, TSIH or CID changed during login');
      }
      if (req.itt !== h.itt) return this.reject(LoginStatus.INITIATOR_ERROR, 'Initiator Task Tag changed during login');
    }
    // RFC 7143 11.12.2: C=1 requires T=0.
    if (req.continue && req.transit) return this.reject(LoginStatus.INITIATOR_ERROR, 'Login Request with both C and T set');
    if (req.csg !== LoginStage.SECURITY && req.csg !== LoginStage.OPERATIONAL) {
      return this.reject(LoginStatus.INITIATOR_ERROR, `CSG ${req.csg} is not a login stage`);
    }
    // RFC 7143 11.12.3: with T=1, NSG names a later stage (2 is reserved).
    if (req.transit && (req.nsg === 2 || req.nsg <= req.csg)) {
      return this.reject(LoginStatus.INITIATOR_ERROR, `cannot transit from stage ${req.csg} to stage ${req.nsg}`);
    }
    if (this.state !== 'new' && req.csg !== this.stage) {
      return this.reject(LoginStatus.INITIATOR_ERROR, `CSG ${req.csg} but the login is in stage ${this.stage}`);
    }
    return undefined;
  }

  /** The first request names the initiator, the session type and the target (RFC 7143 13.4, 13.5, 13.21). */
  private firstRequest(req: LoginRequest, text: TextPair[]): LoginResponse | undefined {
    const get = (key: string): string | undefined => text.find(([k]) => k === key)?.[1];
    const initiatorName = get('InitiatorName');
    if (!initiatorName) {
      return this.reject(LoginStatus.MISSING_PARAMETER, 'InitiatorName missing from the first Login Request (RFC 7143 13.5)');
    }
    const sessionType = get('SessionType') ?? 'Normal';
    if (sessionType !== 'Normal' && sessionType !== 'Discovery') {
      return this.reject(LoginStatus.SESSION_TYPE_NOT_SUPPORTED, `SessionType=${sessionType} (RFC 7143 13.21)`);
    }
    if (sessionType === 'Discovery' && this.cfg.discovery === false) {
      return this.reject(LoginStatus.SESSION_TYPE_NOT_SUPPORTED, 'discovery sessions are disabled');
    }
    this.initiatorName = initiatorName;
    this.sessionType = sessionType;
    const leading = req.tsih === 0;

    let auth: LoginTarget['auth'];
    if (sessionType === 'Normal') {
      const targetName = get('TargetName');
      if (!targetName) {
        return this.reject(
          LoginStatus.MISSING_PARAMETER,
          'TargetName missing from the first Login Request of a Normal session (RFC 7143 13.4)',
        );
      }
      const target = this.cfg.targetLookup(targetName);
      if (!target) return this.reject(LoginStatus.NOT_FOUND, `no target ${targetName}`);
      this.target = target;
      auth = target.auth;
    } else {
      auth = this.cfg.discoveryAuth;
    }
    if (!leading) {
      const session = { isid: this.header!.isid, tsih: req.tsih, initiatorName, targetName: this.target?.name };
      const exists = this.cfg.sessionExists?.(session) ?? false;
      if (!exists) return this.reject(LoginStatus.SESSION_DOES_NOT_EXIST, `no session with TSIH ${req.tsih} for ${initiatorName}`);
    }

    this.authRequired = auth !== undefined;
    this.credentials = typeof auth === 'function' ? auth(initiatorName) : auth;
    if (this.credentials) {
      const { errors, warnings } = validateChapCredentials(this.credentials);
      if (errors.length > 0) return this.reject(LoginStatus.TARGET_ERROR, `CHAP configuration: ${errors.join('; ')}`);
      for (const w of warnings) this.cfg.warn?.(w);
    }

    this.negotiator = new Negotiator(this.params, { leading });
    this.stage = req.csg;
    this.state = req.csg === LoginStage.SECURITY ? 'security' : 'operational';
    if (req.csg === LoginStage.OPERATIONAL) {
      // The initiator skips security negotiation: fine unless we require authentication.
      if (this.authRequired) {
        return this.reject(LoginStatus.AUTHENTICATION_FAILURE, 'authentication is required but the initiator skipped security negotiation');
      }
      this.authMethod = 'None';
      return this.securityComplete();
    }
    return undefined;
  }

  /** Authentication succeeded (or was not needed): now the ACL decides (RFC 7143 11.13.5, 0202h). */
  private securityComplete(): LoginResponse | undefined {
    this.securityDone = true;
    if (this.target?.allowInitiator && !this.target.allowInitiator(this.initiatorName)) {
      return this.reject(LoginStatus.AUTHORIZATION_FAILURE, `${this.initiatorName} is not in the ACL of ${this.target.name}`);
    }
    return undefined;
  }

  /** CSG 0: AuthMethod, CHAP, and the declarative keys allowed in any stage. */
  private securityStage(req: LoginRequest, text: TextPair[]): LoginResponse {
    const security = new Map(text.filter(([k]) => isSecurityKey(k)));
    const neg = this.negotiator!.process(
      text.filter(([k]) => !isSecurityKey(k)),
      'security',
    );
    if (!neg.ok) return this.rejectNegotiation(neg);
    const response: TextPair[] = [];
    let progressed = false;

    const offered = security.get('AuthMethod');
    if (offered !== undefined) {
      if (this.authMethod !== undefined) return this.reject(LoginStatus.INITIATOR_ERROR, 'AuthMethod negotiated twice (RFC 7143 6.3)');
      const methods = offered.split(',');
      if (this.authRequired) {
        // RFC 7143 6.2.1: we support only CHAP here, so CHAP is the first supported value.
        if (!methods.includes('CHAP')) {
          return this.reject(LoginStatus.AUTHENTICATION_FAILURE, `CHAP is required, the initiator offers AuthMethod=${offered}`);
        }
        if (!this.credentials) return this.reject(LoginStatus.AUTHENTICATION_FAILURE, `no CHAP credentials for ${this.initiatorName}`);
        this.authMethod = 'CHAP';
        this.chap = new ChapAuthenticator(this.credentials, { algorithms: this.cfg.chapAlgorithms, random: this.cfg.random });
        this.chapState = 'method';
        progressed = true;
        response.push(['AuthMethod', 'CHAP']);
      } else {
        if (!methods.includes('None')) {
          return this.reject(
            LoginStatus.AUTHENTICATION_FAILURE,
            `no authentication configured, the initiator insists on AuthMethod=${offered}`,
          );
        }
        this.authMethod = 'None';
        response.push(['AuthMethod', 'None']);
        const r = this.securityComplete();
        if (r) return r;
      }
    }

    const chapKeys = [...security.keys()].filter((k) => k !== 'AuthMethod');
    if (chapKeys.length > 0) {
      if (this.authMethod !== 'CHAP') return this.reject(LoginStatus.INITIATOR_ERROR, `${chapKeys.join(', ')} without AuthMethod=CHAP`);
      const unknown = chapKeys.filter((k) => !CHAP_KEYS.has(k));
      if (unknown.length > 0) return this.reject(LoginStatus.INITIATOR_ERROR, `${unknown.join(', ')} in a CHAP exchange`);
      const chapA = security.get('CHAP_A');
      if (chapA !== undefined) {
        if (this.chapState !== 'method' || chapKeys.length > 1) {
          return this.reject(LoginStatus.AUTHENTICATION_FAILURE, 'CHAP_A out of order (RFC 7143 12.1.3)');
        }
        const r = this.chap!.challenge(chapA);
        if (!r.ok) return this.reject(LoginStatus.AUTHENTICATION_FAILURE, r.reason);
        response.push(...r.keys);
        this.chapState = 'challenged';
        progressed = true;
      } else {
        if (this.chapState !== 'challenged') return this.reject(LoginStatus.AUTHENTICATION_FAILURE, 'CHAP response before the challenge');
        const r = this.chap!.verify(security);
        if (!r.ok) return this.reject(LoginStatus.AUTHENTICATION_FAILURE, r.reason);
        response.push(...r.keys);
        const done = this.securityComplete();
        if (done) return done;
      }
    }

    response.push(...neg.response, ...this.identity());

    if (!req.transit) return this.respond(req, response, false, 0);
    if (!this.securityDone) {
      if (!this.authRequired && this.authMethod === undefined) {
        // AuthMethod defaults to None (RFC 7143 12).
        this.authMethod = 'None';
        const r = this.securityComplete();
        if (r) return r;
      } else if (progressed) {
        // The exchange goes on: the target must not transit yet (RFC 7143 12.1.3).
        return this.respond(req, response, false, 0);
      } else {
        return this.reject(LoginStatus.AUTHENTICATION_FAILURE, 'the initiator asks to leave security negotiation before authenticating');
      }
    }
    // To skip the operational stage we must have nothing left to declare or propose; else we
    // answer NSG=1 and declare there.
    if (req.nsg === LoginStage.FULL_FEATURE && !this.negotiator!.hasPendingOffers()) return this.complete(req, response);
    this.stage = LoginStage.OPERATIONAL;
    this.state = 'operational';
    return this.respond(req, response, true, LoginStage.OPERATIONAL);
  }

  /** CSG 1: operational keys and declarations. */
  private operationalStage(req: LoginRequest, text: TextPair[]): LoginResponse {
    if (!this.securityDone) return this.reject(LoginStatus.AUTHENTICATION_FAILURE, 'operational stage before authentication');
    const sec = text.find(([k]) => isSecurityKey(k));
    if (sec) return this.reject(LoginStatus.INITIATOR_ERROR, `${sec[0]} after security negotiation (RFC 7143 6.3)`);
    const neg = this.negotiator!.process(text, 'operational');
    if (!neg.ok) return this.rejectNegotiation(neg);
    const response: TextPair[] = [...neg.response, ...this.negotiator!.targetOffers(req.transit), ...this.identity()];
    if (req.transit && !this.negotiator!.awaitingAnswers) return this.complete(req, response);
    return this.respond(req, response, false, 0);
  }

  /** TargetPortalGroupTag and TargetAlias, in the first response of a Normal session (13.6, 13.9). */
  private identity(): TextPair[] {
    if (this.identitySent || !this.target) return [];
    this.identitySent = true;
    const out: TextPair[] = [];
    if (this.target.alias) out.push(['TargetAlias', this.target.alias]);
    out.push(['TargetPortalGroupTag', String(this.target.portalGroupTag)]);
    return out;
  }

  private complete(req: LoginRequest, text: TextPair[]): LoginResponse {
    const h = this.header!;
    this.state = 'done';
    const done: LoginResult = {
      sessionType: this.sessionType,
      initiatorName: this.initiatorName,
      initiatorAlias: this.negotiator!.initiatorAlias,
      targetName: this.target?.name,
      target: this.target,
      authMethod: this.authMethod ?? 'None',
      chapUser: this.authMethod === 'CHAP' ? this.credentials?.user : undefined,
      mutualChap: this.chap?.mutual ?? false,
      negotiated: this.negotiator!.result(),
      isid: Buffer.from(h.isid),
      tsih: h.tsih,
      cid: h.cid,
      leading: h.tsih === 0,
    };
    return { ...this.respond(req, text, true, LoginStage.FULL_FEATURE), done };
  }

  private respond(req: LoginRequest, text: TextPair[], transit: boolean, nsg: number): LoginResponse {
    return {
      status: LoginStatus.SUCCESS,
      csg: req.csg,
      nsg: transit ? nsg : 0,
      transit,
      versionMax: ISCSI_VERSION,
      versionActive: ISCSI_VERSION,
      text,
    };
  }

  private rejectNegotiation(f: NegotiationFailure): LoginResponse {
    const status = f.kind === 'session-type-not-supported' ? LoginStatus.SESSION_TYPE_NOT_SUPPORTED : LoginStatus.INITIATOR_ERROR;
    return this.reject(status, f.reason);
  }

  private reject(status: LoginStatusCode, reason: string): LoginResponse {
    this.state = 'failed';
    this.failure = {
      status,
      csg: this.stage,
      nsg: 0,
      transit: false,
      versionMax: ISCSI_VERSION,
      versionActive: ISCSI_VERSION,
      text: [],
      reason,
    };
    return this.copyOfFailure();
  }

  private copyOfFailure(): LoginResponse {
    const f = this.failure!;
    return { ...f, text: [] };
  }
}
