/**
 * The questions dbdoctor asks on a terminal, behind a small interface so that commands can be
 * driven by tests without a terminal. The real one uses @inquirer/prompts, imported lazily (only
 * when a question is actually asked), writing to stderr so stdout stays the product. Confirmations
 * default to No. Ctrl-C at a prompt is an interruption (exit 130), never a Yes.
 */
import { InterruptedError } from '../core/errors.js';

export interface Choice<V> {
  value: V;
  /** One line, already sanitized for the terminal. */
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
  const name = (err as { name?: string } | null)?.name;
  return name === 'ExitPromptError' || name === 'AbortPromptError' || name === 'CancelPromptError';
}

/** The terminal prompter: @inquirer/prompts on stdin/stderr. */
export function inquirerPrompter(opts: InquirerPrompterOptions = {}): Prompter {
  const context = {
    input: opts.input ?? process.stdin,
    output: opts.output ?? process.stderr,
    ...(opts.signal ? { signal: opts.signal } : {}),
    clearPromptOnDone: false,
  };
  const guard = async <T>(ask: () => Promise<T>): Promise<T> => {
    try {
      return await ask();
    } catch (err) {
      if (isPromptExit(err)) throw new InterruptedError();
      throw err;
    }
  };
  return {
    checkbox: <V>(message: string, choices: Array<Choice<V>>) =>
      guard(async () => {
        const { checkbox } = await import('@inquirer/prompts');
        return checkbox<V>(
          {
            message,
            choices: choices.map((c) => ({ value: c.value, name: c.name, checked: c.checked, ...(c.short !== undefined ? { short: c.short } : {}) })),
            pageSize: Math.min(Math.max(choices.length, 1), 15),
            required: false,
            loop: false,
          },
          context,
        );
      }),
    confirm: (message: string) =>
      guard(async () => {
        const { confirm } = await import('@inquirer/prompts');
        return confirm({ message, default: false }, context);
      }),
  };
}
