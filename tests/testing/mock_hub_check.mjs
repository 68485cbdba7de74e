// Checks tests/testing/mock_hub.py against the official JS client, @huggingface/hub
// (installed in tests/testing/node_modules by
//  npm install --prefix tests/testing  ; version pinned in tests/testing/package.json).
//
// Against a running mock:
//   node tests/testing/mock_hub_check.mjs HUB_URL REPO REV FILE TOKEN
//     REPO: ORG/NAME=DIR[,ORG/NAME=DIR...], each repo as given to mock_hub.py --repo
//           (DIR holds step<N>/); a repo that refuses an anonymous download is taken
//           as gated and is also checked without a token and with a wrong one.
//     REV: branch, main or commit sha; FILE: a repo path (config.json is checked too).
//     TOKEN: the mock's --token.
// Self-contained (starts the mock twice: S3-style CDN, then CloudFront-style CDN
// with the resolve-cache redirect; each with a public, a gated and a renamed repo):
//   node tests/testing/mock_hub_check.mjs --spawn DIR
//
// Prints a JSON summary; exits 1 on any mismatch.

import { downloadFile, fileDownloadInfo, HubApiError, listFiles, modelInfo } from "@huggingface/hub";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const LIBRARY = "@huggingface/hub@" +
	JSON.parse(readFileSync(join(HERE, "node_modules/@huggingface/hub/package.json"))).version;
const WRONG_TOKEN = "hf_notthetoken";
const SPAWN_TOKEN = "hf_mockhubchecktoken";

// --- local fixture helpers

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const gitBlobSha1 = (buf) => createHash("sha1").update(`blob ${buf.length}\0`).update(buf).digest("hex");
const isLfs = (path, size) => /\.(safetensors|bin|pt)$/.test(path) || size > 10 * 1024 * 1024;
const stripEtag = (etag) => etag?.replace(/^W\//, "").replace(/^"|"$/g, "");

function localFiles(dir) {
	const out = new Map();
	const walk = (d) => {
		for (const name of readdirSync(d)) {
			const p = join(d, name);
			if (statSync(p).isDirectory()) walk(p);
			else out.set(relative(dir, p).split(sep).join("/"), p);
		}
	};
	walk(dir);
	return out;
}

// --- a fetch that records what the library asked and what it read back

function recordingFetch(log) {
	return async (url, init = {}) => {
		const resp = await fetch(url, init);
		const h = (name) => resp.headers.get(name);
		log.push({
			method: init.method ?? "GET",
			url: String(url),
			auth: Boolean(init.headers?.Authorization),
			range: init.headers?.Range ?? null,
			status: resp.status,
			redirected: resp.redirected,
			finalUrl: resp.url,
			headers: Object.fromEntries(["content-range", "etag", "x-linked-etag", "x-linked-size", "x-repo-commit",
				"x-error-code", "x-cache", "content-type"].filter(h).map((n) => [n, h(n)])),
		});
		return resp;
	};
}

// --- checks

class Checker {
	constructor(hubUrl) {
		this.hubUrl = hubUrl;
		this.results = [];
	}

	record(name, ok, detail) {
		this.results.push({ name, ok: Boolean(ok), ...(detail === undefined ? {} : { detail }) });
	}

	async expectError(name, promise, status) {
		try {
			await promise;
			this.record(name, false, "no error");
		} catch (e) {
			this.record(name, e instanceof HubApiError && e.statusCode === status,
				e instanceof HubApiError ? { status: e.statusCode, message: e.message.split(". URL")[0] } : String(e));
		}
	}

	// The branch folder on disk for a revision: the mock's refs map commits to step<N>.
	async branchDir(repo, dir, revision, accessToken) {
		const info = await modelInfo({ name: repo, revision, hubUrl: this.hubUrl, accessToken, additionalFields: ["sha"] });
		const refs = await (await fetch(`${this.hubUrl}/api/models/${repo}/refs`)).json();
		const branch = refs.branches.find((b) => b.targetCommit === info.sha && b.name !== "main");
		return { sha: info.sha, dir: join(dir, branch.name) };
	}

	async listing(tag, repo, revision, local, accessToken) {
		const entries = [];
		for await (const e of listFiles({ repo, revision, hubUrl: this.hubUrl, accessToken, recursive: true })) {
			entries.push(e);
		}
		const files = entries.filter((e) => e.type === "file");
		const bad = [];
		for (const e of files) {
			const disk = local.get(e.path);
			if (!disk) { bad.push(`${e.path}: not on disk`); continue; }
			const buf = readFileSync(disk);
			if (e.size !== buf.length) bad.push(`${e.path}: size ${e.size} != ${buf.length}`);
			if (isLfs(e.path, buf.length)) {
				if (e.lfs?.oid !== sha256(buf) || e.lfs?.size !== buf.length) bad.push(`${e.path}: lfs ${JSON.stringify(e.lfs)}`);
			} else if (e.oid !== gitBlobSha1(buf)) {
				bad.push(`${e.path}: oid ${e.oid}`);
			}
		}
		const missing = [...local.keys()].filter((p) => !files.some((e) => e.path === p));
		this.record(`${tag} listFiles`, bad.length === 0 && missing.length === 0,
			{ files: files.map((e) => e.path), bad, missing });
	}

	async oneFile(tag, repo, revision, path, disk, accessToken) {
		const buf = readFileSync(disk);
		const lfs = isLfs(path, buf.length);
		const log = [];
		const f = recordingFetch(log);
		const info = await fileDownloadInfo({ repo, revision, path, hubUrl: this.hubUrl, accessToken, fetch: f });
		const probe = log[0];
		const hub = new URL(this.hubUrl).origin;
		const landed = new URL(probe.finalUrl).origin;
		const cloudfront = probe.headers["x-cache"]?.endsWith(" cloudfront");
		const wantEtag = lfs ? sha256(buf) : gitBlobSha1(buf);
		// LFS: the probe must end on the CDN; info.url is the CDN URL only when the CDN
		// says it is CloudFront (otherwise the library keeps the Hub URL, so as not to
		// send Authorization to an S3 URL). Small files stay on the Hub.
		const urlOk = lfs
			? landed !== hub && (cloudfront ? new URL(info.url).origin === landed : new URL(info.url).origin === hub)
			: landed === hub && new URL(info.url).origin === hub;
		this.record(`${tag} fileDownloadInfo ${path}`,
			info && info.size === buf.length && stripEtag(info.etag) === wantEtag && urlOk,
			{ size: info?.size, etag: info?.etag, url: info?.url.split("?")[0], probeLandedOn: landed, cloudfront: Boolean(cloudfront) });

		const blob = await downloadFile({ repo, revision, path, hubUrl: this.hubUrl, accessToken, fetch: f });
		const got = Buffer.from(await blob.arrayBuffer());
		const a = Math.min(5, buf.length), b = Math.min(buf.length, a + 1000);
		const part = Buffer.from(await blob.slice(a, b).arrayBuffer()); // a ranged request
		this.record(`${tag} downloadFile ${path}`, got.equals(buf) && part.equals(buf.subarray(a, b)),
			{ bytes: got.length, sha256: sha256(got), slice: [a, b], sliceOk: part.equals(buf.subarray(a, b)) });
		return log;
	}

	// Everything for one repo, revision and file with a token that may read it.
	async fullCheck(tag, repo, dir, revision, file, accessToken, readAs = repo) {
		const { sha, dir: bdir } = await this.branchDir(readAs, dir, revision, accessToken);
		const local = localFiles(bdir);
		await this.listing(tag, repo, revision, local, accessToken);
		const log = [];
		for (const path of new Set([file, "config.json"])) {
			log.push(...await this.oneFile(tag, repo, revision, path, local.get(path), accessToken));
		}
		// The same file by commit sha (revision URL-encoded by the library).
		const bySha = await downloadFile({ repo, revision: sha, path: file, hubUrl: this.hubUrl, accessToken });
		this.record(`${tag} downloadFile @${sha.slice(0, 8)}`,
			Buffer.from(await bySha.arrayBuffer()).equals(readFileSync(local.get(file))));
		const none = await fileDownloadInfo({ repo, revision, path: "no-such-file.json", hubUrl: this.hubUrl, accessToken });
		this.record(`${tag} missing file -> null`, none === null);
		return log;
	}

	async repo(repo, dir, revision, file, token) {
		let gated = false;
		try {
			await fileDownloadInfo({ repo, revision, path: "config.json", hubUrl: this.hubUrl });
		} catch (e) {
			if (!(e instanceof HubApiError) || e.statusCode !== 401) throw e;
			gated = true;
		}
		if (!gated) {
			const log = await this.fullCheck(`${repo}@${revision} anonymous`, repo, dir, revision, file, undefined);
			await this.fullCheck(`${repo}@${revision} token`, repo, dir, revision, file, token);
			return log;
		}
		const get = (accessToken) => downloadFile({ repo, revision, path: file, hubUrl: this.hubUrl, accessToken });
		await this.expectError(`${repo} gated, no token -> 401`, get(undefined), 401);
		await this.expectError(`${repo} gated, wrong token -> 403`, get(WRONG_TOKEN), 403);
		return this.fullCheck(`${repo}@${revision} gated+token`, repo, dir, revision, file, token);
	}

	async all(repos, revision, file, token, renamed) {
		const logs = [];
		for (const [repo, dir] of repos) logs.push(...await this.repo(repo, dir, revision, file, token));
		await this.expectError("unknown repo, anonymous -> 401",
			fileDownloadInfo({ repo: "nobody/nothing", path: "config.json", hubUrl: this.hubUrl }), 401);
		await this.expectError("unknown repo, token -> 404",
			fileDownloadInfo({ repo: "nobody/nothing", path: "config.json", hubUrl: this.hubUrl, accessToken: token }), 404);
		if (renamed) { // requests naming the old repo follow the Hub's relative 307
			const [oldName, newName, dir] = renamed;
			const { dir: bdir } = await this.branchDir(newName, dir, revision);
			const local = localFiles(bdir);
			for (const path of new Set([file, "config.json"])) {
				logs.push(...await this.oneFile(`${oldName} (renamed)`, oldName, revision, path, local.get(path), undefined));
			}
		}
		return logs;
	}
}

// --- the kinds of requests the library made, and the headers of what it got back

function requestShapes(logs) {
	const seen = new Set();
	for (const r of logs) {
		const kind = `${r.method} range=${r.range ?? "-"} -> ${r.status}${r.redirected ? " (after redirect)" : ""}`
			+ ` headers present: ${Object.keys(r.headers).sort().join(",")}`;
		seen.add(kind);
	}
	return [...seen].sort();
}

async function runAgainst(hubUrl, repos, revision, file, token, renamed) {
	const c = new Checker(hubUrl);
	let logs = [];
	try {
		logs = await c.all(repos, revision, file, token, renamed);
	} catch (e) {
		c.record("unexpected error", false, String(e?.stack ?? e));
	}
	return { hubUrl, revision, file, checks: c.results, requestShapes: requestShapes(logs),
		ok: c.results.length > 0 && c.results.every((r) => r.ok) };
}

// --- --spawn: start the mock ourselves

async function spawnMock(dir, extra) {
	const tmp = mkdtempSync(join(tmpdir(), "mock-hub-check-"));
	const portFile = join(tmp, "ports.json");
	const args = [join(HERE, "mock_hub.py"),
		"--repo", `EleutherAI/pythia-micro=${dir}`,
		"--repo", `EleutherAI/pythia-micro-gated=${dir}`, "--gated", "EleutherAI/pythia-micro-gated",
		"--repo", `EleutherAI/pythia-micro-old=${dir}`, "--rename", "EleutherAI/pythia-micro-old=EleutherAI/pythia-micro-new",
		"--token", SPAWN_TOKEN, "--port-file", portFile, ...extra];
	const child = spawn("/usr/bin/python3", args, { stdio: ["ignore", "ignore", "inherit"] });
	for (let i = 0; i < 200 && !existsSync(portFile); i++) await new Promise((r) => setTimeout(r, 50));
	if (!existsSync(portFile)) throw new Error("mock_hub.py did not start");
	const { url } = JSON.parse(readFileSync(portFile));
	return { url, stop: () => { child.kill("SIGTERM"); rmSync(tmp, { recursive: true, force: true }); } };
}

async function main(argv) {
	let runs = [];
	if (argv[0] === "--spawn" && argv.length === 2) {
		const dir = argv[1];
		const repos = [["EleutherAI/pythia-micro", dir], ["EleutherAI/pythia-micro-gated", dir]];
		const renamed = ["EleutherAI/pythia-micro-old", "EleutherAI/pythia-micro-new", dir];
		for (const extra of [["--cdn-mode", "s3"], ["--cdn-mode", "cloudfront", "--resolve-cache"]]) {
			const mock = await spawnMock(dir, extra);
			try {
				for (const rev of ["main", "step0"]) {
					const run = await runAgainst(mock.url, repos, rev, "model.safetensors", SPAWN_TOKEN, renamed);
					runs.push({ mock: extra.join(" "), ...run });
				}
			} finally {
				mock.stop();
			}
		}
	} else if (argv.length === 5) {
		const [hubUrl, repoArg, rev, file, token] = argv;
		const repos = repoArg.split(",").map((s) => { const i = s.indexOf("="); return [s.slice(0, i), s.slice(i + 1)]; });
		runs.push(await runAgainst(hubUrl.replace(/\/$/, ""), repos, rev, file, token));
	} else {
		console.error("usage: mock_hub_check.mjs HUB_URL ORG/NAME=DIR[,...] REV FILE TOKEN | --spawn DIR");
		process.exit(2);
	}
	const ok = runs.every((r) => r.ok);
	console.log(JSON.stringify({ library: LIBRARY, node: process.version, ok, runs }, null, 1));
	process.exit(ok ? 0 : 1);
}

await main(process.argv.slice(2));
