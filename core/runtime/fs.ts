/** Small file-system helpers shared by the programs and scripts. */
import { stat } from "node:fs/promises";

export async function fileExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
