/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'typescript' }, target: 'es2023' }, module: { type: 'es6' } },
    ],
  },
  // Sources use NodeNext-style "./x.js" specifiers; map them back to the .ts file.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  // No PG* variable of the developer's reaches a test (see the file).
  setupFiles: ['<rootDir>/test/support/isolate-env.ts'],
  testTimeout: 60000,
  maxWorkers: 2,
};
