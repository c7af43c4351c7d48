"""ARIMA_PLUS, BigQuery ML's time-series pipeline, in numpy/scipy: regular time grid with
interpolated gaps, spike-and-dip cleaning, seasonal decomposition (periods tested for the
data frequency), then auto-ARIMA on the adjusted series (KPSS picks d, conditional sum of
squares fits each (p, q) with p + q <= auto_arima_max_order, AIC chooses). Forecasts
for the whole horizon are made at training time, as BigQuery does."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.signal import lfilter

from labkit.bigquery.ml.errors import MLError

_DAY = 86400.0
# frequency in days -> candidate seasonal periods (steps, BigQuery's name)
_SEASONS = [(1 / 24, [(24, "DAILY"), (168, "WEEKLY")]),
            (1, [(7, "WEEKLY"), (365, "YEARLY")]),
            (7, [(52, "YEARLY")]),
            (30, [(12, "YEARLY"), (3, "QUARTERLY")]),
            (91, [(4, "YEARLY")])]


def _kpss_nonstationary(x: np.ndarray) -> bool:
    n = len(x)
    if n < 8:
        return False
    e = x - x.mean()
    s = np.cumsum(e)
    lags = int(4 * (n / 100) ** 0.25)
    lrv = e @ e / n
    for k in range(1, lags + 1):
        lrv += 2 * (1 - k / (lags + 1)) * (e[k:] @ e[:-k]) / n
    return lrv > 0 and (s @ s) / (n * n * lrv) > 0.463


def _residuals(params, w, p, q, with_c):
    c = params[-1] if with_c else 0.0
    ar = np.r_[1.0, -params[:p]]
    ma = np.r_[1.0, params[p:p + q]]
    return lfilter(ar, ma, w - c)[p:]


class ArimaSeries:
    """One fitted time series."""

    def fit(self, ts: pd.Series, values: pd.Series, options: dict) -> ArimaSeries:
        frame = pd.DataFrame({"t": pd.to_datetime(ts), "y": pd.to_numeric(values)})
        frame = frame.dropna(subset=["t"]).groupby("t", as_index=False)["y"].mean()
        frame = frame.sort_values("t")
        if len(frame) < 3:
            raise MLError("ARIMA_PLUS needs at least 3 distinct timestamps per time series")
        steps = np.diff(frame["t"].to_numpy()).astype("timedelta64[s]").astype(float)
        self.step = float(np.median(steps))
        grid = pd.date_range(frame["t"].iloc[0], frame["t"].iloc[-1],
                             freq=pd.Timedelta(seconds=self.step))
        y = frame.set_index("t")["y"].reindex(grid.union(frame["t"])).interpolate(
            method="time").reindex(grid).to_numpy(float)
        self.last = grid[-1]
        self.history = (grid, y.copy())
        self.has_spikes = False
        if options.get("clean_spikes_and_dips", True) and len(y) >= 7:
            med = pd.Series(y).rolling(7, center=True, min_periods=1).median().to_numpy()
            resid = y - med
            mad = np.median(np.abs(resid - np.median(resid))) or 1e-9
            spikes = np.abs(resid) > 6 * 1.4826 * mad
            if spikes.any():
                self.has_spikes = True
                y = np.where(spikes, med, y)
        self.seasons = []
        freq_days = self.step / _DAY
        candidates = min(_SEASONS, key=lambda s: abs(np.log(s[0] / freq_days)))[1]
        for period, name in candidates:
            if len(y) < 2 * period:
                continue
            trend = pd.Series(y).rolling(period, center=True, min_periods=period).mean()
            detr = y - trend.to_numpy()
            phase = np.arange(len(y)) % period
            pattern = pd.Series(detr).groupby(phase).mean().reindex(range(period)).fillna(0)
            pattern = (pattern - pattern.mean()).to_numpy()
            seasonal = pattern[phase]
            if np.nanvar(seasonal) > 0.1 * np.nanvar(detr[~np.isnan(detr)]):
                self.seasons.append((period, name, pattern))
                y = y - seasonal
        self.n = len(y)
        self.cleaned = y + sum(pattern[np.arange(len(y)) % period]
                               for period, _, pattern in self.seasons)
        self.adjusted = y                       # cleaned and de-seasonalized
        self._auto_arima(y, options)
        return self

    def _auto_arima(self, z: np.ndarray, options: dict) -> None:
        order = options.get("non_seasonal_order")
        d = 0
        if order and options.get("auto_arima") is False:
            p_range, q_range, d = [int(order[0])], [int(order[2])], int(order[1])
        else:
            while d < 2 and _kpss_nonstationary(np.diff(z, d) if d else z):
                d += 1
            top = int(options.get("auto_arima_max_order", 5))
            p_range = q_range = range(0, min(top, 5) + 1)
        w = np.diff(z, d) if d else z
        with_c = d == 0 or (d == 1 and bool(options.get("include_drift")))
        best = None
        for p in p_range:
            for q in q_range:
                if p + q > int(options.get("auto_arima_max_order", 5)) or len(w) <= p + q + 2:
                    continue
                x0 = np.r_[np.zeros(p + q), [w.mean()] if with_c else []]
                params = x0
                if len(x0):
                    params = minimize(lambda prm, p=p, q=q: float(np.sum(
                        _residuals(prm, w, p, q, with_c) ** 2)), x0, method="L-BFGS-B",
                        bounds=[(-0.99, 0.99)] * (p + q) + ([(None, None)] if with_c else [])).x
                e = _residuals(params, w, p, q, with_c)
                sigma2 = max(float(e @ e / len(e)), 1e-12)
                loglik = -len(e) / 2 * (np.log(2 * np.pi * sigma2) + 1)
                aic = -2 * loglik + 2 * (p + q + int(with_c) + 1)
                if best is None or aic < best["aic"]:
                    best = {"p": p, "q": q, "params": params, "sigma2": sigma2,
                            "loglik": loglik, "aic": aic}
        if best is None:
            raise MLError("ARIMA_PLUS: the time series is too short to fit a model")
        self.p, self.d, self.q = best["p"], d, best["q"]
        params = best["params"]
        self.ar = params[:self.p]
        self.ma = params[self.p:self.p + self.q]
        self.c = float(params[-1]) if with_c else 0.0
        self.has_drift = d == 1 and with_c
        self.sigma2, self.loglik, self.aic = best["sigma2"], best["loglik"], best["aic"]
        self._forecast(z, w, int(options.get("horizon", 1000)))

    def _forecast(self, z: np.ndarray, w: np.ndarray, horizon: int) -> None:
        e = np.r_[np.zeros(self.p), _residuals(np.r_[self.ar, self.ma, [self.c]], w, self.p,
                                               self.q, True)]
        # one-step residuals on the history (the first d points have none)
        self.residuals = np.r_[np.zeros(self.d), e]
        wf, ef = list(w - self.c), list(e)
        for _ in range(horizon):
            value = sum(self.ar[i] * wf[-1 - i] for i in range(self.p) if len(wf) > i)
            value += sum(self.ma[j] * ef[-1 - j] for j in range(self.q) if len(ef) > j)
            wf.append(value)
            ef.append(0.0)
        future = np.asarray(wf[len(w):]) + self.c
        for k in range(self.d, 0, -1):
            last = np.diff(z, k - 1)[-1] if k > 1 else z[-1]
            future = last + np.cumsum(future)
        ar_poly = np.r_[1.0, -self.ar]
        for _ in range(self.d):
            ar_poly = np.polymul(ar_poly, [1.0, -1.0])
        impulse = np.r_[1.0, np.zeros(horizon - 1)]
        psi = lfilter(np.r_[1.0, self.ma], ar_poly, impulse)
        self.std_err = np.sqrt(self.sigma2 * np.cumsum(psi ** 2))
        steps = np.arange(self.n, self.n + horizon)
        for period, _name, pattern in self.seasons:
            future = future + pattern[steps % period]
        self.forecast = future
        self.forecast_times = [self.last + pd.Timedelta(seconds=self.step) * (k + 1)
                               for k in range(horizon)]


class ArimaTrainer:
    def fit(self, df: pd.DataFrame, options: dict) -> list[dict]:
        ts_col = options.get("time_series_timestamp_col")
        data_col = options.get("time_series_data_col")
        if not ts_col or not data_col:
            raise MLError("ARIMA_PLUS models need the time_series_timestamp_col and "
                          "time_series_data_col options")
        for col in (ts_col, data_col):
            if col not in df.columns:
                raise MLError(f"Column {col} named in the ARIMA_PLUS options is not in the "
                              "training data")
        ids = options.get("time_series_id_col") or []
        self.id_cols = [ids] if isinstance(ids, str) else list(ids)
        self.ts_col, self.data_col = ts_col, data_col
        self.series: list[tuple[tuple, ArimaSeries]] = []
        groups = df.groupby(self.id_cols, sort=True, dropna=False) if self.id_cols else [((), df)]
        for key, part in groups:
            key = key if isinstance(key, tuple) else (key,)
            self.series.append((key, ArimaSeries().fit(part[ts_col], part[data_col], options)))
        return [{"iteration": 0, "loss": None, "eval_loss": None, "learning_rate": None,
                 "duration_ms": 0}]
