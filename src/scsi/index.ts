/**
 * The SCSI wire vocabulary shared by both sides (the agent builds, the target parses): CDBs,
 * sense, INQUIRY and VPD pages, READ CAPACITY, REPORT LUNS, provisioning, EXTENDED COPY parameter
 * lists and RECEIVE COPY RESULTS. Pure codecs, no I/O.
 */
export * from './constants';
export * from './fields';
export * from './cdb';
export * from './sense';
export * from './inquiry';
export * from './vpd';
export * from './vpd-third-party-copy';
export * from './read-capacity';
export * from './mode-parameters';
export * from './report-luns';
export * from './provisioning';
export * from './xcopy';
export * from './copy-results';
