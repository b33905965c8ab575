/**
 * The questions dbdoctor asks on a terminal, behind small interfaces so that commands can be driven
 * by tests without a terminal: `Menu` for the guided walk, `Prompter` for terminate's checkbox and
 * confirmation. The real ones use the five prompts dbdoctor asks with (select, input, password,
 * confirm, checkbox), each from its own @inquirer package, imported lazily (only when a question is
 * asked) through src/ui/inquirer.ts; never @inquirer/prompts, whose editor prompt would put an
 * encoding stack (iconv-lite) that no question uses into the bundle. They read stdin and ask on
 * stderr so stdout stays the product. Everything a prompt shows (its message, labels, descriptions,
 * defaults and validation messages) is sanitized here, whoever built it: inquirer writes to the
 * terminal itself, so this is where its text is made inert. Confirmations default to No. Ctrl-C at
 * a prompt (ExitPromptError) and an aborted signal (AbortPromptError) are an interruption (exit
 * 130), never a Yes.
 */
import { InterruptedError } from '../core/errors.js';
import { showable } from '../core/text.js';
import { oneLine } from '../render/sanitize.js';

export interface MenuChoice<T> {
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

export interface Choice<V> {
  value: V;
  name: string;
  /** What the answer line shows once chosen (default: name). */
  short?: string;
  checked: boolean;
}

export interface Prompter {
  /** A checkbox list: returns the values left checked. */
  checkbox<V>(message: string, choices: Array<Choice<V>>): Promise<V[]>;
  /** A yes/no question whose default (Enter) is No. */
  confirm(message: string): Promise<boolean>;
}

export interface InquirerPrompterOptions {
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
  signal?: AbortSignal;
}

function isPromptExit(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  return name === 'ExitPromptError' || name === 'AbortPromptError' || name === 'CancelPromptError';
}

/** Runs a prompt, turning Ctrl-C and aborts into InterruptedError. */
async function guarded<T>(signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  if (signal?.aborted) throw new InterruptedError();
  try {
    return await fn();
  } catch (err) {
    if (isPromptExit(err) || signal?.aborted) throw new InterruptedError();
    throw err;
  }
}

const shown = (text: string) => oneLine(text);

/** Every question, on the real terminal. */
function inquirer(opts: InquirerPrompterOptions): Menu & Prompter {
  const context = {
    input: opts.input ?? process.stdin,
    output: opts.output ?? process.stderr,
    ...(opts.signal ? { signal: opts.signal } : {}),
    clearPromptOnDone: false,
  };
  const signal = opts.signal;
  // A menu leaves room for the lines above it (the verdict) on a short terminal: 24 rows give 14.
  const rows = (context.output as { rows?: number }).rows || 24;
  const pageSize = Math.max(5, Math.min(15, rows - 10));
  return {
    select: (message, choices, o = {}) =>
      guarded(signal, async () => {
        const { select, Separator } = await import('./inquirer.js');
        const list = choices.map((c) => (c === 'separator' ? new Separator() : { name: shown(c.name), value: c.value, ...(c.description ? { description: shown(c.description) } : {}) }));
        return select({ message: shown(message), choices: list, pageSize, loop: false, ...(o.default !== undefined ? { default: o.default } : {}) }, context);
      }),
    input: (message, o = {}) =>
      guarded(signal, async () => {
        const { input } = await import('./inquirer.js');
        // A default is shown and is also the answer: one that cannot be shown exactly is not offered.
        const fallback = o.default !== undefined && showable(o.default) ? { default: o.default } : {};
        const validate = o.validate;
        return input({ message: shown(message), ...fallback, ...(validate ? { validate: (v: string) => { const r = validate(v); return r === true ? true : shown(r); } } : {}) }, context);
      }),
    password: (message) =>
      guarded(signal, async () => {
        const { password } = await import('./inquirer.js');
        return password({ message: shown(message), mask: '*' }, context);
      }),
    confirm: (message, o: { default?: boolean } = {}) =>
      guarded(signal, async () => {
        const { confirm } = await import('./inquirer.js');
        return confirm({ message: shown(message), default: o.default ?? false }, context);
      }),
    checkbox: <V>(message: string, choices: Array<Choice<V>>) =>
      guarded(signal, async () => {
        const { checkbox } = await import('./inquirer.js');
        return checkbox<V>(
          {
            message: shown(message),
            choices: choices.map((c) => ({ value: c.value, name: shown(c.name), checked: c.checked, ...(c.short !== undefined ? { short: shown(c.short) } : {}) })),
            pageSize: Math.min(Math.max(choices.length, 1), pageSize),
            required: false,
            loop: false,
          },
          context,
        );
      }),
  };
}

/** The guided walk's menu on the terminal. */
export function inquirerMenu(opts: InquirerPrompterOptions = {}): Menu {
  return inquirer(opts);
}

/** terminate's questions on the terminal. */
export function inquirerPrompter(opts: InquirerPrompterOptions = {}): Prompter {
  return inquirer(opts);
}
