export * from './chains.js';
export * from './corpus.js';
export * from './families.js';
export * from './sets.js';
export * from './split.js';
export * from './vocab.js';
