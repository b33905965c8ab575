/**
 * The reliability suite covers every command: each command the built binary registers has a
 * spec in test/support/commands.ts (how the faults, bad-input, hostile-data, privilege, footprint
 * and secrets suites drive it). A new command fails here until it is added there.
 */
import { describe, expect, test } from '@jest/globals';
import { COMMANDS, registeredCommands } from '../support/commands.js';

describe('coverage', () => {
  const registered = registeredCommands();

  test('every registered command is driven by the reliability suite', () => {
    const missing = registered.filter((name) => !COMMANDS.some((c) => c.name === name));
    expect(missing).toEqual([]);
  });

  test('every command the suite knows is registered (none was renamed or dropped unnoticed)', () => {
    expect(COMMANDS.map((c) => c.name).filter((n) => !registered.includes(n))).toEqual([]);
  });
});
