/**
 * xcopy-agent as a library (package.json "main": dist/src/index.js), for integration tests and
 * scripts written in TypeScript: the iSCSI initiator session, the wire codecs, the agent's
 * operations, the management API client, the target (to serve LUNs in-process) and the error
 * registry. Everything here is also what the CLI uses; nothing is exported for tests alone.
 *
 *   import { IscsiSession, xcopyCopy, scsi } from 'xcopy-agent';
 */

// Errors: stable codes, one exit status each (README "Exit status").
export * from './errors';

// The initiator: libiscsi through the native binding.
export { IscsiSession, defaultInitiatorName, type ExecuteOptions, type ScsiResult, type SessionOptions } from './initiator/session';
export { parseIscsiUrl, formatIscsiUrl, redactUrl, DEFAULT_ISCSI_PORT, type IscsiUrl, type HeaderDigest } from './initiator/url';
export { DEFAULT_RETRY, NO_RETRY, type RetryPolicy } from './initiator/retry';

// Wire codecs, pure (no I/O): SCSI structures shared by the agent and the target, and the OBF.
export * as scsi from './scsi';
export * as obf from './obf';
export * as secondary from './secondary';

// The agent's operations (docs/method.md).
export { xcopyCopy, type XcopyCopyOptions, type XcopyCopyResult } from './agent/xcopy-copy';
export { hostCopy, type HostCopyOptions, type HostCopyResult } from './agent/host-copy';
export { applyObf, cscdOfLun, readObfLog, type ApplyObfOptions, type ApplyObfResult, type ObfLog } from './agent/apply-obf';
export { backup, type BackupEvent, type BackupOptions, type BackupResult } from './agent/backup';
export { integrate, type IntegrateOptions, type IntegrateResult } from './agent/integrate';
export { SecondaryLun } from './agent/secondary-lun';
export { inquire, type InquireReport, type DesignatorReport } from './agent/inquire';
export { runDrill, type DrillOptions, type DrillResult } from './agent/drill';
export { stampBlocks, checkBlock, type StampCheck } from './agent/stamp';

// The target's management API (snapshots), as a client.
export { ManagementClient, ManagementError, parseManagementUrl, type ManagementClientOptions } from './mgmt';

// The project's iSCSI target, to serve file, memory or remote LUNs in-process.
export { TargetServer } from './target/server';
export { parseConfig, quickConfig, type Config } from './target/config';
