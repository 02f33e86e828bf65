/**
 * The config file (network/config/config-file.ts) on real files in a temp folder: what it
 * accepts and how it names what it refuses; how saving a change keeps the rest of the
 * file; how the command line layers over it (cli/options.ts); and the order in which a
 * change of settings is checked, kept and applied (network/config/settings.ts).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { ConfigError, loadConfigFile, saveConfigKeys } from '../../network/config/config-file.js';
import { Settings, SettingsError, type SettingsTargets } from '../../network/config/settings.js';
import { silentLogger } from '../../network/util/log.js';
import { parseCli, parseWebCli, UsageError } from '../../cli/options.js';
import { rejection, tempDirPerTest } from '../helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('config file', function () {
  const fx = tempDirPerTest('shoal-config-');
  const file = () => path.join(fx.dir, 'shoal.json');
  const write = (content: unknown) => fsp.writeFile(file(), typeof content === 'string' ? content : JSON.stringify(content));
  /** The ConfigError loading the file gives. */
  const refusal = async (content: unknown): Promise<ConfigError> => {
    await write(content);
    try {
      loadConfigFile(file());
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error(`accepted ${JSON.stringify(content)}`);
  };

  describe('reading', function () {
    it('takes the options in camelCase: sizes as text or bytes, a repeatable option as one value or a list', async function () {
      await write({
        peerPort: 9000, shared: '/srv/music', downloads: '/srv/in', peer: ['10.0.0.5:9000', '[::1]:9001'], tracker: 'http://t.example/announce',
        pieceLength: '256k', maxUploadRate: '2M', resolveTimeout: 12.5, folderWatch: false, name: 'attic', bootstrap: 'http://10.0.0.1:8000',
        multicast: false, multicastGroup: '239.1.2.3', multicastPort: 10001, interface: 'eth0', multicastTtl: 2, beaconInterval: 0.5,
        watch: ['*.iso'], httpHost: '0.0.0.0', httpPort: 5001, httpToken: 'a-long-token', logLevel: 'debug', peerIp: '10.0.0.9', peerHost: '10.0.0.9',
      });
      const v = loadConfigFile(file());
      expect(v.maxUploadRate).to.equal(2 * MiB);
      expect(v.pieceLength).to.equal(256 * KiB);
      expect(v.shared).to.deep.equal(['/srv/music']);
      expect(v.tracker).to.deep.equal(['http://t.example/announce']);
      expect(v.interface).to.deep.equal(['eth0']);
      expect(v.peer).to.deep.equal(['10.0.0.5:9000', '[::1]:9001']);
      expect(v.multicast).to.equal(false);
      expect(v.beaconInterval).to.equal(0.5);
      await write({ maxUploadRate: 655360 });
      expect(loadConfigFile(file()).maxUploadRate, 'a number is bytes').to.equal(640 * KiB);
    });

    it('a missing file is an empty one, unless it was named (--config)', async function () {
      expect(loadConfigFile(file())).to.deep.equal({});
      const err = await rejection((async () => loadConfigFile(file(), true))());
      expect(err).to.be.instanceOf(ConfigError);
      expect(err.message).to.equal(`${file()}: no such file`);
    });

    it('refuses an unknown key, by name', async function () {
      const err = await refusal({ maxUploadRate: '1M', maxUploadSpeed: '1M' });
      expect(err.key).to.equal('maxUploadSpeed');
      expect(err.message).to.match(/^.*shoal\.json: "maxUploadSpeed": unknown key/);
      // the one-shot options are not settings
      for (const key of ['get', 'exitWhenDone', 'json', 'config']) expect((await refusal({ [key]: true })).key).to.equal(key);
    });

    it('names the key whose value is wrong, and says what it takes', async function () {
      const cases: Array<[Record<string, unknown>, string, RegExp]> = [
        [{ maxUploadRate: 'fast' }, 'maxUploadRate', /not a size: "fast"/],
        [{ maxUploadRate: -5 }, 'maxUploadRate', /.+/],
        [{ multicastPort: 70000 }, 'multicastPort', /.+/],
        [{ pieceLength: '3k' }, 'pieceLength', /power of two/],
        [{ multicastGroup: '10.0.0.1' }, 'multicastGroup', /multicast address/],
        [{ bootstrap: 'ftp://x' }, 'bootstrap', /http\(s\) URL/],
        [{ peer: 'nohost' }, 'peer', /HOST:PORT|wrong kind/],
        [{ shared: 5 }, 'shared', /wrong kind of value 5/],
        [{ logLevel: 'loud' }, 'logLevel', /.+/],
        [{ httpToken: 'short' }, 'httpToken', /8 to 256/],
        [{ multicast: 'no' }, 'multicast', /.+/],
      ];
      for (const [content, key, message] of cases) {
        const err = await refusal(content);
        expect(err.key, JSON.stringify(content)).to.equal(key);
        expect(err.message, JSON.stringify(content)).to.contain(`"${key}": `).and.match(message);
      }
    });

    it('a file that is not a JSON object is refused whole', async function () {
      expect((await refusal('{"maxUploadRate": 1,')).message).to.match(/not valid JSON/);
      expect((await refusal('[1, 2]')).message).to.match(/must hold a JSON object/);
      expect((await refusal('null')).message).to.match(/must hold a JSON object/);
    });
  });

  describe('saving a change', function () {
    it('sets and removes keys, and keeps every other key of the file as it was', async function () {
      await write({ name: 'attic', maxUploadRate: '1M', bootstrap: 'http://10.0.0.1:8000' });
      await saveConfigKeys(file(), { maxUploadRate: 2 * MiB, shared: ['/a', '/b'], bootstrap: undefined });
      expect(JSON.parse(await fsp.readFile(file(), 'utf8'))).to.deep.equal({ name: 'attic', maxUploadRate: 2 * MiB, shared: ['/a', '/b'] });
      expect(loadConfigFile(file()).maxUploadRate).to.equal(2 * MiB);
    });

    it('creates the file (and its folder) when there is none, and keeps the permissions of one that exists', async function () {
      const nested = path.join(fx.dir, 'downloads', '.shoal', 'shoal.json');
      await saveConfigKeys(nested, { multicast: false });
      expect(JSON.parse(await fsp.readFile(nested, 'utf8'))).to.deep.equal({ multicast: false });
      await fsp.chmod(nested, 0o600);
      await saveConfigKeys(nested, { multicast: true });
      expect((await fsp.stat(nested)).mode & 0o777).to.equal(0o600);
    });

    it('never overwrites a file that no longer parses, nor writes one a start would refuse', async function () {
      const broken = '{ "name": "attic", oops }';
      await write(broken);
      const err = await rejection(saveConfigKeys(file(), { maxUploadRate: 1000 }));
      expect(err).to.be.instanceOf(ConfigError);
      expect(err.message).to.match(/not valid JSON.*fix or remove it/);
      expect(await fsp.readFile(file(), 'utf8')).to.equal(broken);

      await write({ maxUploadRate: 1000 });
      expect(await rejection(saveConfigKeys(file(), { multicastPort: 0 }))).to.be.instanceOf(ConfigError);
      expect(JSON.parse(await fsp.readFile(file(), 'utf8'))).to.deep.equal({ maxUploadRate: 1000 });
    });
  });

  describe('under the command line', function () {
    const downloads = () => path.join(fx.dir, 'downloads');
    const stateFile = () => path.join(downloads(), '.shoal', 'shoal.json');
    const writeState = async (content: unknown) => {
      await fsp.mkdir(path.dirname(stateFile()), { recursive: true });
      await fsp.writeFile(stateFile(), JSON.stringify(content));
    };

    it('an option not on the command line comes from shoal.json in the state folder', async function () {
      await writeState({ maxUploadRate: '640k', shared: ['/srv/a', '/srv/b'], multicast: false, peerPort: 9100, bootstrap: 'http://10.0.0.1:8000/' });
      const o = parseCli(['--downloads', downloads()]);
      expect(o.port, 'the port from peerPort').to.equal(9100);
      expect(o.maxUploadRate).to.equal(640 * KiB);
      expect(o.shared).to.deep.equal(['/srv/a', '/srv/b']);
      expect(o.multicast).to.equal(false);
      expect(o.bootstrap).to.equal('http://10.0.0.1:8000');
      expect(o.config.file).to.equal(stateFile());
      expect(o.config.fromCommandLine).to.deep.equal(['downloads']);
    });

    it('the command line wins, key by key, and says which keys it set', async function () {
      await writeState({ maxUploadRate: '640k', shared: '/srv/a', multicast: false, peerPort: 9100, name: 'from-file' });
      const o = parseCli(['9200', '--downloads', downloads(), '--max-upload-rate', '1M', '--shared', '/srv/c', '--shared', '/srv/d']);
      expect(o.port).to.equal(9200);
      expect(o.maxUploadRate).to.equal(MiB);
      expect(o.shared).to.deep.equal(['/srv/c', '/srv/d']);
      expect(o.multicast, 'not on the command line: the file').to.equal(false);
      expect(o.name).to.equal('from-file');
      expect(o.config.fromCommandLine).to.have.members(['downloads', 'maxUploadRate', 'shared', 'peerPort']);
      const w = parseWebCli(['--peer-port', '0', '--downloads', downloads(), '--multicast-ttl', '3']);
      expect(w.port).to.equal(0);
      expect(w.multicast, 'the file turned multicast off; a ttl on the command line does not turn it on').to.equal(false);
    });

    it('without a file every default stands; --shared is repeatable, ./shared_files by default', function () {
      const o = parseCli(['0', '--downloads', downloads()]);
      expect(o.shared).to.deep.equal(['./shared_files']);
      expect(o.maxUploadRate).to.equal(0);
      expect(o.multicast).to.not.equal(false);
      expect(parseCli(['0', '--downloads', downloads(), '--shared', 'x', '--shared', 'y']).shared).to.deep.equal(['x', 'y']);
    });

    it('--config FILE names another file; it must exist', async function () {
      const other = path.join(fx.dir, 'elsewhere.json');
      await fsp.writeFile(other, JSON.stringify({ maxUploadRate: 1000, httpToken: 'token-from-file' }));
      const w = parseWebCli(['--peer-port', '0', '--downloads', downloads(), '--config', other]);
      expect(w.maxUploadRate).to.equal(1000);
      expect(w.http.token).to.equal('token-from-file');
      expect(w.config.file).to.equal(other);
      expect(w.config.stateDir, 'the state folder follows the downloads folder').to.equal(undefined);
      expect(() => parseCli(['0', '--config', path.join(fx.dir, 'nope.json')])).to.throw(UsageError, /nope\.json: no such file/);
    });

    it('a private swarm’s secret: --secret, --secret-file or the file’s secret / secretFile, one of them; the command line wins; exposed places get a warning', async function () {
      const secretFile = path.join(fx.dir, 'swarm.secret');
      const secretOf = (o: { secret?: string; secretWarning?: string }) => [o.secret, o.secretWarning];
      await fsp.writeFile(secretFile, 'secret from a file\nignored second line\n', { mode: 0o600 });
      expect(parseCli(['0', '--downloads', downloads()]).secret, 'an open node by default').to.equal(undefined);
      expect(secretOf(parseCli(['0', '--downloads', downloads(), '--secret', 'on the command line']))).to.deep.equal(['on the command line', undefined]);
      expect(secretOf(parseCli(['0', '--downloads', downloads(), '--secret-file', secretFile]))).to.deep.equal(['secret from a file', undefined]);
      expect(() => parseCli(['0', '--downloads', downloads(), '--secret', 'short'])).to.throw(UsageError, /^--secret: the secret must be at least 8 characters$/);
      expect(() => parseCli(['0', '--downloads', downloads(), '--secret', 'one secret', '--secret-file', secretFile])).to.throw(UsageError, /give --secret or --secret-file, not both/);
      expect(() => parseCli(['0', '--downloads', downloads(), '--secret-file', path.join(fx.dir, 'none')])).to.throw(UsageError, /^--secret-file: cannot read the secret file/);
      await fsp.chmod(secretFile, 0o644);
      expect(parseWebCli(['--peer-port', '0', '--downloads', downloads(), '--secret-file', secretFile]).secretWarning).to.match(/swarm\.secret can be read by other users \(chmod 600 it\)/);
      // From the file; a secret on the command line (either way) wins over both keys.
      await writeState({ secret: 'secret in the config' });
      await fsp.chmod(stateFile(), 0o600);
      expect(secretOf(parseCli(['0', '--downloads', downloads()]))).to.deep.equal(['secret in the config', undefined]);
      await fsp.chmod(stateFile(), 0o644);
      expect(parseCli(['0', '--downloads', downloads()]).secretWarning).to.match(/shoal\.json holds the swarm's secret and other users can read it/);
      expect(parseCli(['0', '--downloads', downloads(), '--secret-file', secretFile]).secret).to.equal('secret from a file');
      await writeState({ secretFile });
      expect(parseCli(['0', '--downloads', downloads()]).secret).to.equal('secret from a file');
      expect(parseCli(['0', '--downloads', downloads(), '--secret', 'command line wins']).secret).to.equal('command line wins');
      await writeState({ secret: 'secret in the config', secretFile });
      expect(() => parseCli(['0', '--downloads', downloads()])).to.throw(UsageError, /give --secret or --secret-file, not both \("secret" in .*shoal\.json, "secretFile" in/);
      await writeState({ secret: 'short' });
      expect(() => parseCli(['0', '--downloads', downloads()])).to.throw(UsageError, /"secret": the secret must be at least 8 characters/);
    });

    it('a bad file is a usage error naming the file and the key', async function () {
      await writeState({ maxUploadRate: 'lots' });
      expect(() => parseCli(['0', '--downloads', downloads()])).to.throw(UsageError, /shoal\.json: "maxUploadRate": not a size/);
      await writeState({ uploadLimit: '1M' });
      expect(() => parseWebCli(['--peer-port', '0', '--downloads', downloads()])).to.throw(UsageError, /"uploadLimit": unknown key/);
    });

    it('a downloads key in the state folder’s file moves the downloads, not the state folder (the file stays where it was found)', async function () {
      await writeState({ downloads: path.join(fx.dir, 'elsewhere') });
      expect(parseCli(['0', '--downloads', downloads()]).downloads, 'the command line wins').to.equal(downloads());
      const cwd = process.cwd();
      process.chdir(fx.dir); // the default downloads folder, ./downloads, is the one holding the file
      try {
        const o = parseCli(['0']);
        expect(o.downloads).to.equal(path.join(fx.dir, 'elsewhere'));
        expect(o.config.file).to.equal(stateFile());
        expect(o.config.stateDir).to.equal(path.dirname(stateFile()));
      } finally {
        process.chdir(cwd);
      }
    });

    it('web still wants a peer port, from the command line or the file', async function () {
      expect(() => parseWebCli(['--downloads', downloads()])).to.throw(UsageError, /--peer-port/);
      await writeState({ peerPort: 9300 });
      expect(parseWebCli(['--downloads', downloads()]).port).to.equal(9300);
    });
  });
});

describe('settings changes', function () {
  const fx = tempDirPerTest('shoal-settings-');

  /** Settings over targets that record what reached them. */
  function settings(opts: { configFile?: string } = {}) {
    const calls: string[] = [];
    let rate = 0;
    const targets: SettingsTargets = {
      uploadRate: { get: () => rate, set: (n) => void (calls.push(`rate ${n}`), (rate = n)) },
      addFolder: async (d) => void calls.push(`add ${d}`),
      removeFolder: async (d) => void calls.push(`remove ${d}`),
      discovery: async (s) => void calls.push(`discovery ${s.multicast} ${s.bootstrap}`),
    };
    const s = new Settings({
      node: { sharedDir: path.join(fx.dir, 'shared'), multicast: false, configFile: opts.configFile },
      stateDir: path.join(fx.dir, 'downloads', '.shoal'),
      downloadDir: path.join(fx.dir, 'downloads'),
      targets,
      changed: () => calls.push('changed'),
      log: silentLogger(),
    });
    return { s, calls };
  }

  it('a change is checked, kept in the file, then applied; an unchanged value reaches nothing', async function () {
    const { s, calls } = settings();
    await fsp.mkdir(path.join(fx.dir, 'music'));
    const after = await s.change({ maxUploadRate: 4096, shared: [path.join(fx.dir, 'music')], multicast: true, bootstrap: 'http://127.0.0.1:8000/' });
    expect(after).to.deep.include({ maxUploadRate: 4096, shared: [path.join(fx.dir, 'music')], multicast: true, bootstrap: 'http://127.0.0.1:8000' });
    expect(calls).to.deep.equal(['rate 4096', `remove ${path.join(fx.dir, 'shared')}`, `add ${path.join(fx.dir, 'music')}`, 'discovery true http://127.0.0.1:8000', 'changed']);
    expect(JSON.parse(await fsp.readFile(after.configFile, 'utf8'))).to.deep.equal({
      maxUploadRate: 4096, shared: [path.join(fx.dir, 'music')], multicast: true, bootstrap: 'http://127.0.0.1:8000',
    });
    calls.length = 0;
    await s.change({ maxUploadRate: 4096, multicast: true });
    expect(calls).to.deep.equal([]);
    await s.change({ bootstrap: null });
    expect(calls).to.deep.equal(['discovery true null', 'changed']);
    expect(JSON.parse(await fsp.readFile(after.configFile, 'utf8'))).to.not.have.property('bootstrap');
  });

  it('a value that cannot be taken is a SettingsError naming it, and nothing changes', async function () {
    const { s, calls } = settings();
    await fsp.writeFile(path.join(fx.dir, 'a-file'), 'x');
    const cases: Array<[unknown, RegExp]> = [
      [{ maxUploadRate: -1 }, /field "maxUploadRate"/],
      [{ maxUploadRate: '1M' }, /field "maxUploadRate"/],
      [{ uploadLimit: 1 }, /unknown setting "uploadLimit"/],
      [{ shared: ['relative/dir'] }, /field "shared": "relative\/dir": not an absolute path/],
      [{ shared: [path.join(fx.dir, 'missing')] }, /no such folder/],
      [{ shared: [path.join(fx.dir, 'a-file')] }, /not a folder/],
      [{ shared: [path.join(fx.dir, 'downloads')] }, /downloads folder is always shared/],
      [{ shared: [path.join(fx.dir, 'downloads', '.shoal')] }, /state folder/],
      [{ bootstrap: 'not a url' }, /field "bootstrap"/],
      ['{}', /body/],
    ];
    for (const [change, message] of cases) {
      const err = await rejection(s.change(change));
      expect(err, JSON.stringify(change)).to.be.instanceOf(SettingsError);
      expect(err.message, JSON.stringify(change)).to.match(message);
    }
    expect(calls).to.deep.equal([]);
    expect(s.get().maxUploadRate).to.equal(0);
  });

  it('a change the config file cannot keep is not made', async function () {
    const configFile = path.join(fx.dir, 'broken.json');
    await fsp.writeFile(configFile, 'not json');
    const { s, calls } = settings({ configFile });
    const err = await rejection(s.change({ maxUploadRate: 1000, multicast: true }));
    expect(err).to.be.instanceOf(ConfigError);
    expect(calls).to.deep.equal([]);
    expect(s.get()).to.deep.include({ maxUploadRate: 0, multicast: false });
    expect(await fsp.readFile(configFile, 'utf8')).to.equal('not json');
  });

  it('the access token is kept (mode 0600), the same on the next load; rotating replaces it and drops an httpToken from the file', async function () {
    const { s } = settings();
    const token = s.accessToken();
    expect(token).to.match(/^[\w-]{32}$/);
    const tokenFile = path.join(fx.dir, 'downloads', '.shoal', 'http-token');
    expect((await fsp.readFile(tokenFile, 'utf8')).trim()).to.equal(token);
    expect((await fsp.stat(tokenFile)).mode & 0o777).to.equal(0o600);
    expect(settings().s.accessToken(), 'a new start finds the same token').to.equal(token);

    await fsp.writeFile(s.configFile, JSON.stringify({ name: 'attic', httpToken: 'an-old-token' }));
    const fresh = await s.rotateAccessToken();
    expect(fresh).to.not.equal(token);
    expect(s.accessToken()).to.equal(fresh);
    expect(settings().s.accessToken()).to.equal(fresh);
    expect((await fsp.stat(tokenFile)).mode & 0o777).to.equal(0o600);
    expect(JSON.parse(await fsp.readFile(s.configFile, 'utf8'))).to.deep.equal({ name: 'attic' });
  });
});
