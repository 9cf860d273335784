// Least-squares linear regression, the "experiment" behind the training web service,
// and the .ilearner document it writes (JSON; the real format is opaque binary).

import { TableError, numberAt, isNumeric } from './table.mjs';

export const ILEARNER_FORMAT = 'lufa-emulator-ilearner';

/**
 * Solves the normal equations of centred data by symmetric elimination without row swaps,
 * so a vanishing pivot names the feature that is constant or a combination of earlier ones.
 */
function solveNormalEquations(X, y, features) {
  const n = X.length;
  const p = features.length;
  const mean = new Array(p).fill(0);
  for (const row of X) row.forEach((v, j) => { mean[j] += v / n; });
  const yMean = y.reduce((a, b) => a + b, 0) / n;
  const A = Array.from({ length: p }, () => new Array(p).fill(0));
  const b = new Array(p).fill(0);
  for (let i = 0; i < n; i += 1) {
    const xc = X[i].map((v, j) => v - mean[j]);
    const yc = y[i] - yMean;
    for (let j = 0; j < p; j += 1) {
      b[j] += xc[j] * yc;
      for (let k = 0; k < p; k += 1) A[j][k] += xc[j] * xc[k];
    }
  }
  const scale = A.map((r, j) => r[j]);
  for (let k = 0; k < p; k += 1) {
    if (!(A[k][k] > 1e-10 * Math.max(scale[k], 1e-300)) || scale[k] === 0) {
      throw new TableError(scale[k] === 0
        ? `feature column '${features[k]}' is constant; drop it or choose other feature columns`
        : `feature column '${features[k]}' is a linear combination of the other features (collinear); least squares has no unique solution`);
    }
    for (let i = k + 1; i < p; i += 1) {
      const f = A[i][k] / A[k][k];
      for (let j = k; j < p; j += 1) A[i][j] -= f * A[k][j];
      b[i] -= f * b[k];
    }
  }
  const w = new Array(p).fill(0);
  for (let k = p - 1; k >= 0; k -= 1) {
    let s = b[k];
    for (let j = k + 1; j < p; j += 1) s -= A[k][j] * w[j];
    w[k] = s / A[k][k];
  }
  const intercept = yMean - w.reduce((s, wj, j) => s + wj * mean[j], 0);
  return { weights: w, intercept };
}

function metrics(predicted, actual) {
  const n = actual.length;
  if (n === 0) return null;
  let se = 0;
  let ae = 0;
  const mean = actual.reduce((a, b) => a + b, 0) / n;
  let ss = 0;
  for (let i = 0; i < n; i += 1) {
    const e = predicted[i] - actual[i];
    se += e * e;
    ae += Math.abs(e);
    ss += (actual[i] - mean) ** 2;
  }
  return {
    rmse: Math.sqrt(se / n),
    mae: ae / n,
    r2: ss > 0 ? 1 - se / ss : null,
  };
}

const round = (x, digits = 10) => (x === null ? null : Number(x.toPrecision(digits)));

/**
 * Trains on a parsed table. options: {label, features (names or null for every other
 * numeric column), holdoutFraction}. Throws TableError with a readable reason.
 */
export function train(table, { label, features, holdoutFraction }) {
  const { columns, rows } = table;
  const labelIndex = columns.indexOf(label);
  if (labelIndex < 0) throw new TableError(`label column '${label}' not found; the columns are: ${columns.join(', ')}`);
  if (rows.length === 0) throw new TableError('the input has a header but no data rows');
  let featureNames;
  let ignored = [];
  if (features && features.length > 0) {
    for (const f of features) {
      if (!columns.includes(f)) throw new TableError(`feature column '${f}' not found; the columns are: ${columns.join(', ')}`);
      if (f === label) throw new TableError(`column '${f}' cannot be both the label and a feature`);
    }
    featureNames = features;
  } else {
    const candidates = columns.filter((c) => c !== label);
    // Text columns are left out; a numeric column with a stray bad cell is an error, not a silent drop.
    featureNames = [];
    for (const c of candidates) {
      const j = columns.indexOf(c);
      const numeric = rows.filter((r) => isNumeric(r.cells[j])).length;
      if (numeric === 0) {
        ignored.push(c);
      } else {
        rows.forEach((r) => numberAt(r, j, c));
        featureNames.push(c);
      }
    }
    if (featureNames.length === 0) throw new TableError(`no numeric feature column besides the label '${label}'`);
  }
  const idx = featureNames.map((f) => columns.indexOf(f));
  const X = rows.map((r) => idx.map((j, k) => numberAt(r, j, featureNames[k])));
  const y = rows.map((r) => numberAt(r, labelIndex, label));

  // Every m-th row is held out, so sorted inputs still give a spread-out holdout.
  const m = holdoutFraction > 0 ? Math.max(2, Math.round(1 / holdoutFraction)) : Infinity;
  const isHoldout = (i) => Number.isFinite(m) && i % m === m - 1;
  const trainX = [];
  const trainY = [];
  const testX = [];
  const testY = [];
  X.forEach((x, i) => {
    if (isHoldout(i)) {
      testX.push(x);
      testY.push(y[i]);
    } else {
      trainX.push(x);
      trainY.push(y[i]);
    }
  });
  if (trainX.length < featureNames.length + 1) {
    throw new TableError(`${trainX.length} training rows are too few for ${featureNames.length} feature(s) plus an intercept`);
  }
  const { weights, intercept } = solveNormalEquations(trainX, trainY, featureNames);
  const predict = (x) => intercept + x.reduce((s, v, j) => s + v * weights[j], 0);
  const holdout = metrics(testX.map(predict), testY);
  const training = metrics(trainX.map(predict), trainY);
  return {
    format: ILEARNER_FORMAT,
    version: 1,
    algorithm: 'LinearRegression (ordinary least squares)',
    label,
    features: featureNames,
    weights: Object.fromEntries(featureNames.map((f, j) => [f, round(weights[j])])),
    intercept: round(intercept),
    trainingRows: trainX.length,
    holdoutRows: testX.length,
    metrics: {
      rmse: holdout ? round(holdout.rmse, 6) : null,
      mae: holdout ? round(holdout.mae, 6) : null,
      r2: holdout ? round(holdout.r2, 6) : null,
      trainingRmse: round(training.rmse, 6),
      trainingR2: round(training.r2, 6),
    },
    ignoredColumns: ignored,
  };
}

/** Checks that a document is an .ilearner this emulator can serve; throws with the reason. */
export function validateModel(doc) {
  const where = (p) => `.ilearner ${p}`;
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${where('(root)')}: expected a JSON object`);
  if (doc.format !== ILEARNER_FORMAT) throw new Error(`${where('format')}: expected "${ILEARNER_FORMAT}", got ${JSON.stringify(doc.format)}`);
  if (typeof doc.label !== 'string') throw new Error(`${where('label')}: expected a column name`);
  if (!Array.isArray(doc.features) || doc.features.some((f) => typeof f !== 'string')) throw new Error(`${where('features')}: expected a list of column names`);
  if (doc.weights === null || typeof doc.weights !== 'object') throw new Error(`${where('weights')}: expected an object feature -> weight`);
  for (const f of doc.features) {
    if (!Number.isFinite(doc.weights[f])) throw new Error(`${where(`weights.${f}`)}: expected a number`);
  }
  if (!Number.isFinite(doc.intercept)) throw new Error(`${where('intercept')}: expected a number`);
  return doc;
}

export function parseModel(buffer) {
  let doc;
  try {
    doc = JSON.parse(buffer.toString('utf8'));
  } catch (err) {
    throw new Error(`the blob is not a trained model this service can load (.ilearner JSON expected: ${err.message})`);
  }
  return validateModel(doc);
}

export function predictRow(model, valueOf) {
  return model.features.reduce((s, f) => s + model.weights[f] * valueOf(f), model.intercept);
}
