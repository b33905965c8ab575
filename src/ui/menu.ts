/**
 * The guided walk's prompts, behind a small interface so the walk can be driven by a test without
 * a terminal. The real one is @inquirer/prompts, imported lazily (it is one of the heaviest
 * modules). Ctrl-C at any prompt (inquirer's ExitPromptError) and an aborted signal
 * (AbortPromptError) both become InterruptedError, which cli.ts turns into exit 130.
 */
import { InterruptedError } from '../core/errors.js';

export interface MenuChoice<T> {
  /** The label; client-controlled text in it must already be sanitized. */
  name: string;
  value: T;
  description?: string;
}

export interface Menu {
  /** One choice from a list; `separator` entries group the list. */
  select<T>(message: string, choices: Array<MenuChoice<T> | 'separator'>, opts?: { default?: T }): Promise<T>;
  /** A line of text. */
  input(message: string, opts?: { default?: string; validate?: (value: string) => true | string }): Promise<string>;
  /** A secret, masked; never echoed back. */
  password(message: string): Promise<string>;
  /** Yes or no; the default is No unless told otherwise. */
  confirm(message: string, opts?: { default?: boolean }): Promise<boolean>;
}

function isPromptExit(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  return name === 'ExitPromptError' || name === 'AbortPromptError' || name === 'CancelPromptError';
}

/** Runs a prompt, turning Ctrl-C and aborts into InterruptedError. */
async function guarded<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  if (signal.aborted) throw new InterruptedError();
  try {
    return await fn();
  } catch (err) {
    if (isPromptExit(err) || signal.aborted) throw new InterruptedError();
    throw err;
  }
}

/**
 * The menu on the real terminal, through @inquirer/prompts: it reads stdin and asks on stderr (as
 * terminate's questions do), so stdout carries only what the steps print.
 */
export function inquirerMenu(signal: AbortSignal): Menu {
  const load = () => import('@inquirer/prompts');
  const context = { input: process.stdin, output: process.stderr, signal, clearPromptOnDone: false };
  return {
    select: (message, choices, opts = {}) =>
      guarded(signal, async () => {
        const { select, Separator } = await load();
        const list = choices.map((c) => (c === 'separator' ? new Separator() : { name: c.name, value: c.value, ...(c.description ? { description: c.description } : {}) }));
        return select({ message, choices: list, pageSize: 15, loop: false, ...(opts.default !== undefined ? { default: opts.default } : {}) }, context);
      }),
    input: (message, opts = {}) =>
      guarded(signal, async () => {
        const { input } = await load();
        return input({ message, ...(opts.default !== undefined ? { default: opts.default } : {}), ...(opts.validate ? { validate: opts.validate } : {}) }, context);
      }),
    password: (message) =>
      guarded(signal, async () => {
        const { password } = await load();
        return password({ message, mask: '*' }, context);
      }),
    confirm: (message, opts = {}) =>
      guarded(signal, async () => {
        const { confirm } = await load();
        return confirm({ message, default: opts.default ?? false }, context);
      }),
  };
}
