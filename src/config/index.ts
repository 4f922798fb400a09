export * from './types.js';
export { parseDuration, formatDuration } from './duration.js';
export { loadConfig, parseConfig, resolveConfigPath, DEFAULT_CONFIG_PATH, CONFIG_ENV } from './load.js';
