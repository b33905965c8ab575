/**
 * Every test file renders as the CLI does for people: with string-width loaded (src/cli.ts awaits
 * loadWidths() before any run that is not `--json`). Without it, non-ASCII text would be counted
 * one column per character, the fallback only machine runs see.
 */
import { beforeAll } from '@jest/globals';
import { loadWidths } from '../../src/render/width.js';

beforeAll(() => loadWidths());
