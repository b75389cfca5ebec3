/** A small `--flag value` / `--switch` parser for the CLI (no dependency). */
import { parseViews, type ViewCount } from '../engine/views';

export interface ParsedArgs {
  _: string[];
  flags: Record<string, string | true>;
}

export function parseArgs(argv: string[]): ParsedArgs {
  const out: ParsedArgs = { _: [], flags: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) {
        out.flags[a.slice(2, eq)] = a.slice(eq + 1);
      } else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) {
        out.flags[a.slice(2)] = argv[++i];
      } else {
        out.flags[a.slice(2)] = true;
      }
    } else {
      out._.push(a);
    }
  }
  return out;
}

export class UsageError extends Error {}

export function str(a: ParsedArgs, name: string, def?: string): string {
  const v = a.flags[name];
  if (v === undefined || v === true) {
    if (def === undefined) throw new UsageError(`missing --${name}`);
    return def;
  }
  return v;
}

export function optStr(a: ParsedArgs, name: string): string | undefined {
  const v = a.flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function num(a: ParsedArgs, name: string, def: number): number {
  const v = a.flags[name];
  if (v === undefined) return def;
  const n = Number(v);
  if (v === true || !Number.isFinite(n)) throw new UsageError(`--${name} needs a number`);
  return n;
}

export function bool(a: ParsedArgs, name: string): boolean {
  const v = a.flags[name];
  return v === true || v === 'true' || v === '1';
}

/** The training options train and cv share: augmentation strength (--no-augment or --augment 0..1) and --dropout. */
export function regularisation(a: ParsedArgs): { augment: number; dropout?: number } {
  const augment = bool(a, 'no-augment') ? 0 : num(a, 'augment', 1);
  if (augment < 0 || augment > 1) throw new UsageError('--augment must be between 0 and 1');
  const dropout = a.flags['dropout'] !== undefined ? num(a, 'dropout', 0.2) : undefined;
  if (dropout !== undefined && (dropout < 0 || dropout >= 1)) throw new UsageError('--dropout must be in [0, 1)');
  return { augment, dropout };
}

/** Test-time views (engine/views.ts) for eval and cv: --views 1|2|10; --mirror is short for --views 2. Default 1. */
export function viewsOption(a: ParsedArgs): ViewCount {
  const given = a.flags['views'];
  if (given !== undefined && bool(a, 'mirror')) throw new UsageError('give --views or --mirror, not both');
  if (bool(a, 'mirror')) return 2;
  return given === undefined ? 1 : viewsFlag(given, '--views');
}

/** A view count given on the command line; a bad one is a UsageError naming the flag. */
function viewsFlag(value: unknown, flag: string): ViewCount {
  try {
    return parseViews(value, flag);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/**
 * Knowledge distillation for train: --teacher <model dir|face-api|scores file>[,...] [--teacher-weights 0.7,0.3]
 * [--teacher-views 10] [--distill 0.5]. Undefined without --teacher (the other three then refused).
 */
export function teacherOption(a: ParsedArgs): { models: string[]; weights?: number[]; views: ViewCount; weight: number } | undefined {
  const t = optStr(a, 'teacher');
  if (t === undefined) {
    for (const f of ['teacher-weights', 'teacher-views', 'distill']) if (a.flags[f] !== undefined) throw new UsageError(`--${f} needs --teacher`);
    return undefined;
  }
  const models = t.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (models.length === 0) throw new UsageError('--teacher needs a model directory (or face-api, or a scores file)');
  const w = optStr(a, 'teacher-weights');
  const weights = w === undefined ? undefined : w.split(',').map(Number);
  if (weights && (weights.length !== models.length || weights.some((x) => !(x > 0)))) {
    throw new UsageError(`--teacher-weights needs ${models.length} positive number(s), got ${w}`);
  }
  const weight = num(a, 'distill', 0.5);
  if (!(weight > 0 && weight <= 1)) throw new UsageError('--distill must be in (0, 1]');
  return { models, weights, views: viewsFlag(a.flags['teacher-views'] ?? 10, '--teacher-views'), weight };
}
