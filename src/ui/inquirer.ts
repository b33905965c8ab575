/**
 * The five prompts dbdoctor asks with, in one module that src/ui/prompts.ts imports lazily (only
 * when a question is asked). Named exports only: the build puts this module and the @inquirer
 * packages in a bundle of their own (scripts/bundle.js), which a dynamic import() loads as CommonJS,
 * where a default export would not survive as one.
 */
export { default as checkbox } from '@inquirer/checkbox';
export { default as confirm } from '@inquirer/confirm';
export { default as input } from '@inquirer/input';
export { default as password } from '@inquirer/password';
export { Separator, default as select } from '@inquirer/select';
