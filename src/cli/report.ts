// `cliptune report RUN_DIR... [--out FILE.html]`: an HTML page (loss curves, accuracy tables and
// charts, mean ± std over seeds) and a Markdown summary over trained runs. A folder that is not a
// run but holds run folders stands for all of them.
import { parseArgs } from 'node:util';
import { expandRunDirs, writeReport } from '../train/report-html.js';

const USAGE = `usage: cliptune report RUN_DIR... [--out FILE.html] [--title TEXT] [--note TEXT]...

Summarises trained runs: groups them by (method, dataset, shots, protocol, options), reports
mean ± std over seeds of base / novel / all test accuracy, HM of the mean base and novel, the
evaluations \`cliptune eval --run\` recorded on other datasets, and each run's loss curve.
Writes FILE.html (default cliptune-report.html; self-contained, inline SVG) and FILE.md.
A RUN_DIR without run.json that holds run folders stands for every run inside it.
`;

export async function reportCommand(argv: string[]): Promise<number> {
  const err = (m: string) => process.stderr.write(`cliptune report: ${m}\n`);
  let values: { out?: string; title?: string; note?: string[]; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: { out: { type: 'string' }, title: { type: 'string' }, note: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (e) {
    err(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!positionals.length) {
    err(`no run folders given\n\n${USAGE}`);
    return 2;
  }
  try {
    const dirs = expandRunDirs(positionals);
    const r = await writeReport(dirs, values.out ?? 'cliptune-report.html', { ...(values.title ? { title: values.title } : {}), ...(values.note ? { notes: values.note } : {}) });
    const runs = r.groups.reduce((a, g) => a + g.runs.length, 0);
    process.stdout.write(`${r.html}\n${r.markdown}\n`);
    process.stderr.write(`cliptune report: ${runs} run${runs === 1 ? '' : 's'} in ${r.groups.length} group${r.groups.length === 1 ? '' : 's'}\n`);
    return 0;
  } catch (e) {
    if ((e as Error).name === 'ReportError' || (e as Error).name === 'MetricsError') {
      err((e as Error).message);
      return 2;
    }
    throw e;
  }
}
