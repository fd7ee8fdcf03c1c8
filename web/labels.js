// Labels: codes, departments and statuses in Chinese beside their ids, and
// the steps a check may take, as the server defines them (GET /api/v1/meta,
// loaded once at sign-in), so that the console never keeps a copy of them.

import { api } from './http.js';

// "中文 English" side by side: officers and foreign staff share screens.
export const L = (zh, en) => `${zh} ${en}`;

const meta = { codes: [], departments: [], case_statuses: [], statuses: {}, check_next: {}, populations: [], inspection_results: [] };

export async function loadMeta() {
  Object.assign(meta, await api('/api/v1/meta'));
}

const codeName = (c) => (meta.codes.find((x) => x.code === c) || {}).zh;
export const deptName = (d) => (meta.departments.find((x) => x.id === d) || {}).zh || d;
export const codes = () => meta.codes.map((c) => c.code);
export const departments = () => meta.departments.map((d) => d.id);
export const caseStatuses = () => meta.case_statuses;
export const codeLabel = (c) => L(codeName(c) || c, c);
export const deptLabel = (d) => L(deptName(d), d);
export const statusLabel = (s) => L(meta.statuses[s] || s, s);
// What an inspection draws from, and an inspection's result.
export const populations = () => meta.populations.map((p) => p.id);
export const populationLabel = (p) => L((meta.populations.find((x) => x.id === p) || {}).zh || p, p);
export const resultLabel = (r) => L((meta.inspection_results.find((x) => x.id === r) || {}).zh || r, r);
// The statuses a check in status `s` may move to (one step forward).
export const nextStatuses = (s) => meta.check_next[s] || [];
