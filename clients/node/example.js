// Creates a softmax model on a Lepton server, teaches it three classes of
// points in the plane, one Update per batch, and asks it which class a few
// points belong to. The server is $LEPTON_TARGET (default localhost:50051).
//
//   npm ci
//   LEPTON_TARGET=localhost:50051 node example.js [MODEL]   # MODEL: node-example
//
// It prints each version the model publishes and the predictions, and exits
// 1 with the gRPC code on an error (ALREADY_EXISTS if MODEL exists).
'use strict';

const { connect, statusName } = require('./lepton');

// Class c's points lie around CENTERS[c].
const CENTERS = [[2, 0], [-1, 1.7], [-1, -1.7]];

// A batch of n labeled examples, the same for the same seed.
function batch(seed, n = 30) {
  let state = seed * 2654435761 >>> 0;
  const random = () => {  // a small linear congruential generator, in [0, 1)
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const examples = [];
  for (let i = 0; i < n; i++) {
    const label = i % CENTERS.length;
    const [x, y] = CENTERS[label];
    const dense = [x + random() - 0.5, y + random() - 0.5];
    examples.push({ features: { dense }, label });
  }
  return examples;
}

async function main(target, name) {
  const lepton = connect(target);
  try {
    const info = await lepton.createModel({
      name,
      spec: { type: 'SOFTMAX_REGRESSION', num_features: 2, num_classes: 3,
              optimizer: { kind: 'SGD', learning_rate: 0.5 } },
    });
    console.log(`created ${info.name}: ${info.spec.type}, version ${info.version}`);

    for (let seed = 1; seed <= 5; seed++) {
      const update = await lepton.update({ model: name, examples: batch(seed) });
      console.log(`update: version ${update.version}, ${update.examples} examples, ` +
                  `loss before ${update.loss_before.toFixed(4)}`);
    }

    const points = CENTERS.map(([x, y]) => ({ dense: [x, y] }));
    const answer = await lepton.predict({ model: name, instances: points });
    console.log(`predict: version ${answer.version}`);
    answer.predictions.forEach((p, i) => {
      const probabilities = p.probabilities.map((q) => q.toFixed(3)).join(' ');
      console.log(`  [${points[i].dense}] -> class ${p.label} (probabilities ${probabilities})`);
    });
  } finally {
    lepton.close();
  }
}

module.exports = { batch, main, CENTERS };

if (require.main === module) {
  const target = process.env.LEPTON_TARGET || 'localhost:50051';
  main(target, process.argv[2] || 'node-example').catch((error) => {
    const code = error.code === undefined ? '' : ` (${statusName(error.code)})`;
    console.error(`example.js: ${error.details || error.message}${code}`);
    process.exitCode = 1;
  });
}
