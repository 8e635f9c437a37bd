// Validates KEDA resources against the schemas of the KEDA CRDs, as shipped by
// @kubernetes-models/keda. Input: a JSON array of Kubernetes resources on stdin
// (resources of other API groups are ignored). Prints one line per error; exit 1 on any.
import { ScaledObject, TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1";

const models = { ScaledObject, TriggerAuthentication };
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const resources = JSON.parse(Buffer.concat(chunks).toString("utf8"));

let failures = 0;
for (const resource of resources) {
  if (!String(resource.apiVersion).startsWith("keda.sh/")) continue;
  const name = `${resource.kind}/${resource.metadata?.name}`;
  const Model = models[resource.kind];
  if (resource.apiVersion !== "keda.sh/v1alpha1" || !Model) {
    console.log(`${name}: no schema for ${resource.apiVersion} ${resource.kind}`);
    failures++;
    continue;
  }
  try {
    new Model(resource).validate();
    console.log(`${name}: valid`);
  } catch (error) {
    console.log(`${name}: ${error.message}`);
    failures++;
  }
}
process.exit(failures ? 1 : 0);
