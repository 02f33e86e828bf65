/**
 * The Settings routes of the API: read and change what the node lets change while it runs
 * (each change kept in its config file), and rotate the dashboard's access token.
 *
 * A rotation answers with the new token and sets the browser's cookie to it, so the page
 * that asked keeps working; every other holder of the old token (another browser, a
 * script, a live connection) is shut out at once.
 */
import express, { type Request, type Response } from 'express';
import { ConfigError, HttpError, SettingsError, type Logger, type Node } from '../network/index.js';
import { settingsView } from './views-data.js';

export interface SettingsApiInit {
  node: Node;
  log: Logger;
  /** Whether the dashboard asks for a token now. */
  tokenInUse(): boolean;
  /** Make a new token the only one (kept by the node), and answer `res` with its cookie set. */
  rotateToken(res: Response): Promise<{ token: string; openUrl: string }>;
}

/** A change that cannot be made is the asker's (400); a config file that cannot keep it is the machine's (500, logged). */
function settingsError(err: unknown): unknown {
  if (err instanceof SettingsError) return new HttpError(400, err.message);
  if (err instanceof ConfigError) return new HttpError(500, `the change was not made: ${err.message}`);
  return err;
}

export function settingsRouter(init: SettingsApiInit): express.Router {
  const { node, log } = init;
  const api = express.Router();
  const view = () => settingsView(node.settings(), init.tokenInUse());

  api.get('/settings', (_req, res) => {
    res.json(view());
  });
  api.patch('/settings', async (req: Request, res: Response) => {
    if (req.body === undefined) throw new HttpError(415, 'send a JSON body with Content-Type: application/json');
    try {
      await node.changeSettings(req.body);
    } catch (err) {
      throw settingsError(err);
    }
    log.info({ changed: Object.keys(req.body as object) }, 'settings changed from the dashboard');
    res.json(view());
  });
  api.post('/settings/token', async (_req, res) => {
    if (!init.tokenInUse()) throw new HttpError(409, 'no access token is in use: the dashboard listens on loopback only (give it --http-token, or --http-host, to use one)');
    let rotated;
    try {
      rotated = await init.rotateToken(res);
    } catch (err) {
      throw settingsError(err);
    }
    res.setHeader('Cache-Control', 'no-store');
    res.json(rotated);
  });
  return api;
}
