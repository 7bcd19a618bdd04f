/**
 * The copy manager (bridge): EXTENDED COPY (LID1) and RECEIVE COPY RESULTS executed against the
 * stores of the logical units an initiator may reach.
 */
export { CopyManager, DEFAULT_COPY_MANAGER_LIMITS, IMPLEMENTED_DESCRIPTOR_TYPE_CODES, CSCD_ID_RECEIVING_LU, type CopyManagerCounters, type CopyManagerLimits, type CopyManagerOptions, type ReachableLu } from './copy-manager';
export { COPY_MANAGER_OPCODES, copyManagerOf, copyManagerOpcodeRows, enableCopyManager } from './opcodes';
export { BufferPool } from './buffer-pool';
export { copyAbortedDetails, type CopyAbort, type ForwardedSense } from './sense';
