// Tabular input for the ML emulator: CSV, TSV and (a subset of) ARFF, with a header row.
// Errors name the line so a Failed job's Details point at the bad cell.

export class TableError extends Error {}

/** Splits delimited text into records, honouring RFC 4180 quoting; returns [{line, cells}]. */
function splitRecords(text, delimiter) {
  const records = [];
  let cells = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let recordLine = 1;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i += 1;
        } else {
          quoted = false;
        }
      } else {
        if (ch === '\n') line += 1;
        cell += ch;
      }
      continue;
    }
    if (ch === '"' && cell === '') {
      quoted = true;
    } else if (ch === delimiter) {
      cells.push(cell);
      cell = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i += 1;
      cells.push(cell);
      records.push({ line: recordLine, cells });
      cells = [];
      cell = '';
      line += 1;
      recordLine = line;
    } else {
      cell += ch;
    }
  }
  if (quoted) throw new TableError(`line ${recordLine}: a quoted field is not closed`);
  if (cell !== '' || cells.length > 0) {
    cells.push(cell);
    records.push({ line: recordLine, cells });
  }
  // Blank lines carry no data.
  return records.filter((r) => !(r.cells.length === 1 && r.cells[0].trim() === ''));
}

function parseArff(text) {
  const columns = [];
  const lines = text.split(/\r?\n/);
  let i = 0;
  for (; i < lines.length; i += 1) {
    const l = lines[i].trim();
    if (l === '' || l.startsWith('%')) continue;
    const m = /^@attribute\s+('([^']*)'|"([^"]*)"|(\S+))\s+/i.exec(l);
    if (m) {
      columns.push(m[2] ?? m[3] ?? m[4]);
      continue;
    }
    if (/^@data\b/i.test(l)) break;
    if (/^@relation\b/i.test(l)) continue;
    throw new TableError(`line ${i + 1}: expected @relation, @attribute or @data, got '${l.slice(0, 40)}'`);
  }
  if (i >= lines.length) throw new TableError('the ARFF file has no @data section');
  if (columns.length === 0) throw new TableError('the ARFF file declares no @attribute');
  const rest = lines.slice(i + 1).map((l) => (l.trim().startsWith('%') ? '' : l)).join('\n');
  const records = splitRecords(rest, ',').map((r) => ({ line: r.line + i + 1, cells: r.cells.map((c) => c.trim().replace(/^'(.*)'$/, '$1')) }));
  return { columns, records };
}

/** Parses a table; `format` is 'csv', 'tsv' or 'arff'. Returns {columns, rows: [{line, cells}]}. */
export function parseTable(buffer, format) {
  let text = buffer.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let columns;
  let records;
  if (format === 'arff') {
    ({ columns, records } = parseArff(text));
  } else {
    const all = splitRecords(text, format === 'tsv' ? '\t' : ',');
    if (all.length === 0) throw new TableError('the file is empty; a header row with column names was expected');
    columns = all[0].cells.map((c) => c.trim());
    records = all.slice(1);
  }
  const seen = new Set();
  columns.forEach((c, i) => {
    if (c === '') throw new TableError(`header: column ${i + 1} has no name`);
    if (seen.has(c)) throw new TableError(`header: column name '${c}' appears twice`);
    seen.add(c);
  });
  for (const r of records) {
    if (r.cells.length !== columns.length) {
      throw new TableError(`line ${r.line}: expected ${columns.length} values (${columns.join(', ')}), got ${r.cells.length}`);
    }
  }
  return { columns, rows: records };
}

/** Reads a cell as a number or throws a TableError naming line and column. */
export function numberAt(row, index, column) {
  const raw = row.cells[index].trim();
  const where = `${row.input ? `input '${row.input}' ` : ''}line ${row.line}, column '${column}'`;
  if (raw === '') throw new TableError(`${where}: missing value`);
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new TableError(`${where}: '${raw.slice(0, 40)}' is not a number`);
  return value;
}

export const isNumeric = (raw) => raw.trim() !== '' && Number.isFinite(Number(raw.trim()));

function csvCell(value) {
  const s = String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(columns, rows) {
  return `${[columns, ...rows].map((r) => r.map(csvCell).join(',')).join('\r\n')}\r\n`;
}

/** Formats a prediction for people: at most 4 decimals, no trailing zeros. */
export function formatNumber(x) {
  const rounded = Math.round(x * 1e4) / 1e4;
  return Object.is(rounded, -0) ? '0' : String(rounded);
}

/**
 * Stacks the tables of several inputs that share their columns (in any order); rows
 * remember which input they came from so errors can name it.
 */
export function stackTables(named) {
  const [[firstName, first], ...rest] = named;
  const rows = first.rows.map((r) => ({ ...r, input: named.length > 1 ? firstName : undefined }));
  for (const [name, t] of rest) {
    const same = t.columns.length === first.columns.length && t.columns.every((c) => first.columns.includes(c));
    if (!same) {
      throw new TableError(`input '${name}' has the columns ${t.columns.join(', ')}, but input '${firstName}' has ${first.columns.join(', ')}; every input must have the same columns`);
    }
    const order = first.columns.map((c) => t.columns.indexOf(c));
    for (const r of t.rows) rows.push({ line: r.line, input: name, cells: order.map((j) => r.cells[j]) });
  }
  return { columns: first.columns, rows };
}
