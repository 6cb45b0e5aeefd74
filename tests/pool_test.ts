import { contractSuite } from "./_contract.ts";

contractSuite("local", () => ({ workers: 2 }));
