/**
 * Golden login text shared by the iSCSI login-phase tests: what libiscsi sends, taken from its
 * lib/login.c (facts only: keys, values, order, flags).
 */
import type { TextPair } from '../../../../src/target/iscsi/text';

/** Text data written as pairs, each NUL-terminated. */
export function nulText(...pairs: string[]): Buffer {
  return Buffer.from(pairs.map((p) => `${p}\0`).join(''), 'utf8');
}

export const LIBISCSI_INITIATOR = 'iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-inq';
export const TARGET = 'iqn.2026-11.test:disk';

/**
 * libiscsi 1.19.0 iscsi_login_async() for a Normal session without CHAP: no user set, so it
 * starts in the operational stage (CSG=1 NSG=3 T=1), no alias, the defaults of lib/init.c
 * (MaxBurstLength, FirstBurstLength and the initiator's MaxRecvDataSegmentLength 262144,
 * InitialR2T=No, ImmediateData=Yes, HeaderDigest=None,CRC32C) and 1.19.0's fixed
 * DataDigest=None. The order is that of the iscsi_login_add_* calls. (The same keys were seen on
 * the wire in pdu-fixtures.ts, with another target name.)
 */
export function libiscsiLoginKeys(initiatorName: string, targetName: string): string[] {
  return [
    `InitiatorName=${initiatorName}`,
    `TargetName=${targetName}`,
    'SessionType=Normal',
    'HeaderDigest=None,CRC32C',
    'DataDigest=None',
    'InitialR2T=No',
    'ImmediateData=Yes',
    'MaxBurstLength=262144',
    'FirstBurstLength=262144',
    'DefaultTime2Wait=2',
    'DefaultTime2Retain=0',
    'MaxOutstandingR2T=1',
    'ErrorRecoveryLevel=0',
    'IFMarker=No',
    'OFMarker=No',
    'MaxConnections=1',
    'MaxRecvDataSegmentLength=262144',
    'DataPDUInOrder=Yes',
    'DataSequenceInOrder=Yes',
  ];
}

export const LIBISCSI_1_19_LEADING_LOGIN = nulText(...libiscsiLoginKeys(LIBISCSI_INITIATOR, TARGET));

/** The operational keys of that login (what libiscsi sends once CHAP is done, CSG=1 NSG=3 T=1). */
export const LIBISCSI_1_19_OPERATIONAL: TextPair[] = [
  ['HeaderDigest', 'None,CRC32C'],
  ['DataDigest', 'None'],
  ['InitialR2T', 'No'],
  ['ImmediateData', 'Yes'],
  ['MaxBurstLength', '262144'],
  ['FirstBurstLength', '262144'],
  ['DefaultTime2Wait', '2'],
  ['DefaultTime2Retain', '0'],
  ['MaxOutstandingR2T', '1'],
  ['ErrorRecoveryLevel', '0'],
  ['IFMarker', 'No'],
  ['OFMarker', 'No'],
  ['MaxConnections', '1'],
  ['MaxRecvDataSegmentLength', '262144'],
  ['DataPDUInOrder', 'Yes'],
  ['DataSequenceInOrder', 'Yes'],
];
