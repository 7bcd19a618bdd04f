// Tests log nothing unless asked (XCOPY_AGENT_LOG_LEVEL=debug npx jest ... to see the logs).
process.env.XCOPY_AGENT_LOG_LEVEL ??= 'silent';
