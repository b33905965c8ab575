// How a bundle of dbdoctor is built (esbuild options), for scripts/bundle.js and for the bench's
// node+pg floor (scripts/bench.js), which must be built as dbdoctor is to be its floor.

/** Every bundle: one CommonJS file for Node 20 and later, whitespace and syntax minified, ASCII only. */
export const BUNDLE_OPTIONS = { bundle: true, format: 'cjs', platform: 'node', target: 'node20', minifyWhitespace: true, minifySyntax: true, charset: 'ascii', logLevel: 'warning' };

/** The one module left out: pg's optional native binding, which dbdoctor never asks pg for. */
export const EXTERNAL = ['pg-native'];
