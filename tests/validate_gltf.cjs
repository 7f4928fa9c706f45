// Validate a .glb/.gltf with Khronos' glTF-Validator; print its report as JSON.
// Usage: NODE_PATH=.cache/node/node_modules node tests/validate_gltf.cjs FILE
const fs = require("fs");
const path = require("path");
const validator = require("gltf-validator");

const file = process.argv[2];
validator
  .validateBytes(new Uint8Array(fs.readFileSync(file)), {
    uri: path.basename(file),
    externalResourceFunction: (uri) =>
      Promise.resolve(new Uint8Array(fs.readFileSync(path.join(path.dirname(file), decodeURIComponent(uri))))),
  })
  .then((report) => console.log(JSON.stringify(report)))
  .catch((err) => {
    console.error(String(err));
    process.exit(1);
  });
