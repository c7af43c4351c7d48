"""GEOGRAPHY: values, their text as BigQuery prints it, and the ST_* functions that run here.

A GEOGRAPHY column is a marked STRUCT (schema.marked_duck("GEOGRAPHY", "VARCHAR")) holding
the value's canonical WKT. Every value is parsed (WKT, GeoJSON, WKB as bytes or hex),
validated and normalised when it is made (a load, an insertAll row, a query parameter,
ST_GEOGFROMTEXT...), so reading one back is reading its text.

What BigQuery documents (GoogleSQL "Geography functions" and "Data types",
https://cloud.google.com/bigquery/docs/reference/standard-sql/geography_functions, the same
text as google/zetasql docs/geography_functions.md and data-types.md), and what this module
does the same way:
- edges are geodesics on a sphere; polygons read without `oriented` are the smaller of the
  two regions their rings bound, and print with the shell counterclockwise and the holes
  clockwise: a ring given the other way round is printed reversed, from its last vertex
  (ST_GEOGFROM('POLYGON((0 0, 0 2, 2 2, 2 0, 0 0))') is POLYGON((2 0, 2 2, 0 2, 0 0, 2 0)));
- coordinates print with as few digits as keep the value (POINT(-135.0000 90.0000) prints
  POINT(-135 90)); WKT is "TYPE(x y, x y)"; an empty geography is GEOMETRYCOLLECTION EMPTY
  (POINT EMPTY reads as the same value); a collection prints as the simplest type that
  holds it (points, then lines, then polygons);
- latitudes lie in [-90, 90]; ST_GEOGPOINT takes any longitude modulo 360, parsers want
  [-180, 180]; no Z or M coordinates;
- ST_DISTANCE, ST_LENGTH and ST_AREA measure on a sphere (use_spheroid FALSE, the default).
  The docs do not give its radius: 6371008.8 m (the IUGG mean Earth radius) is assumed
  here, not checked against a billed project.
- ST_ASGEOJSON writes '{ "type": "Point", "coordinates": [1, 2] }', the spacing of the
  docs' GeoJSON examples.
- GeoJSON edges are planar: BigQuery adds vertices so each geodesic edge stays within 10 m
  of the planar one (ST_GEOGFROMGEOJSON, ST_ASGEOJSON). Where an edge needs such vertices
  here, the value is refused by name rather than given other vertices than BigQuery's.
Predicates (ST_INTERSECTS, ST_DISJOINT, ST_CONTAINS, ST_WITHIN, ST_COVERS, ST_COVEREDBY,
ST_EQUALS) and polygon validity are exact on the sphere for values within one hemisphere:
the gnomonic projection about their centre maps geodesics to straight lines, where shapely
decides them; values in disjoint caps are apart; other wide values are refused by name.
Not done: BigQuery's snapping and its merging of a collection's overlapping parts (a point
on a line stays a separate point here); GEOGRAPHY columns compared, grouped or ordered
are refused only where the operand is visibly a GEOGRAPHY (check_comparisons).
"""

from __future__ import annotations

import functools
import json
import math
import re

from labkit.bigquery.errors import LOCAL_ONLY_HINT, BigQueryError

RADIUS_M = 6371008.8
FIELD = "bq$geography"  # schema.marked_field("GEOGRAPHY")
DUCK_TYPE = f'STRUCT("{FIELD}" VARCHAR)'  # schema.marked_duck("GEOGRAPHY", "VARCHAR")
GEOJSON_TOLERANCE_M = 10.0
_TAG = "bq-geography:"  # starts the text of an error raised inside a UDF
_UNSUPPORTED = "bq-geography-unsupported:"


class GeographyError(ValueError):
    """A value BigQuery refuses (a 400)."""

    def __init__(self, message: str):
        super().__init__(_TAG + message)


class GeographyUnsupported(ValueError):
    """A value or function BigQuery takes that the local one does not compute."""

    def __init__(self, feature: str):
        super().__init__(_UNSUPPORTED + feature)


def udf_error(text: str) -> BigQueryError | None:
    """The BigQuery error behind a DuckDB error raised by one of this module's UDFs."""
    for tag, unsupported in ((_UNSUPPORTED, True), (_TAG, False)):
        at = text.find(tag)
        if at >= 0:
            message = text[at + len(tag):].strip()
            if unsupported:
                message = f"{message} is not supported by the local BigQuery. " \
                          f"{LOCAL_ONLY_HINT}"
            return BigQueryError(message, "invalidQuery", "query")
    return None


# --- the value --------------------------------------------------------------------------
# A geography here: (points, lines, polygons); a point (lon, lat), a line a list of points,
# a polygon a list of rings (shell first), a ring its vertices without the closing one.

def _shapely():
    import shapely

    return shapely


def _check_point(x: float, y: float, wrap: bool = False) -> tuple[float, float]:
    if not (math.isfinite(x) and math.isfinite(y)):
        raise GeographyError(f"Invalid coordinates: ({x}, {y}) are not finite numbers")
    if not -90 <= y <= 90:
        raise GeographyError(f"Latitude must be between -90 and 90 degrees: {_num(y)}")
    if wrap:
        x = math.remainder(x, 360.0)  # in [-180, 180]
    elif not -180 <= x <= 180:
        raise GeographyError(f"Longitude must be between -180 and 180 degrees: {_num(x)}")
    return (x + 0.0, y + 0.0)  # -0.0 prints as 0


def _dedupe(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out = []
    for p in points:
        if not out or out[-1] != p:
            out.append(p)
    return out


def _ring(coords, what: str) -> list[tuple[float, float]]:
    points = _dedupe([_check_point(c[0], c[1]) for c in coords])
    if len(points) > 1 and points[0] == points[-1]:
        points.pop()
    if len(set(points)) < 3:
        raise GeographyError(f"Invalid polygon: a {what} needs at least three distinct "
                             "vertices")
    return points


def _flatten(geom, points, lines, polygons) -> None:
    kind = geom.geom_type
    if geom.is_empty:
        return
    if kind == "Point":
        points.append(_check_point(geom.x, geom.y))
    elif kind == "LineString":
        line = _dedupe([_check_point(c[0], c[1]) for c in geom.coords])
        if len(line) < 2:
            raise GeographyError("Invalid linestring: it needs at least two distinct vertices")
        lines.append(line)
    elif kind == "Polygon":
        shell = _oriented(_ring(geom.exterior.coords, "shell"), counterclockwise=True)
        holes = [_oriented(_ring(r.coords, "hole"), counterclockwise=False)
                 for r in geom.interiors]
        polygon = [shell, *holes]
        _check_polygon(polygon)
        polygons.append(polygon)
    elif kind in ("MultiPoint", "MultiLineString", "MultiPolygon", "GeometryCollection"):
        for part in geom.geoms:
            _flatten(part, points, lines, polygons)
    else:
        raise GeographyError(f"Unsupported geometry type {kind}")


def _check_polygon(polygon) -> None:
    """Rings that cross, or holes outside their shell, are BigQuery's error; decided in the
    gnomonic projection, where the geodesic edges are straight."""
    from shapely.geometry import Polygon
    from shapely.validation import explain_validity

    project = _gnomonic([([], [], [polygon])])
    shape = Polygon(_closed([project(p) for p in polygon[0]]),
                    [_closed([project(p) for p in h]) for h in polygon[1:]])
    if not shape.is_valid:
        raise GeographyError(f"Invalid polygon: {explain_validity(shape).split('[')[0].strip()}")


def _oriented(ring, counterclockwise: bool):
    """The ring in BigQuery's orientation: reversed (from its last vertex) if need be."""
    if (_signed_area(ring) > 0) != counterclockwise:
        return ring[::-1]
    return ring


def from_shapely(geom):
    shapely = _shapely()
    if shapely.has_z(geom):
        raise GeographyError("Geographies with Z or M coordinates are not supported")
    points, lines, polygons = [], [], []
    _flatten(geom, points, lines, polygons)
    return (list(dict.fromkeys(points)), lines, polygons)  # a point set: each point once


def from_wkt(text: str):
    shapely = _shapely()
    if re.search(r"\b(Z|M|ZM)\s*\(", text, re.IGNORECASE):
        raise GeographyError(f"Invalid WKT: Z and M coordinates are not supported: {text}")
    try:
        geom = shapely.from_wkt(text)
    except Exception as exc:  # noqa: BLE001 - GEOS's parse error, said as BigQuery's
        raise GeographyError(f"Invalid WKT: {_short(exc)}: {text[:200]}") from None
    return from_shapely(geom)


_GEOJSON_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                  "MultiPolygon", "GeometryCollection"}


def _check_positions(value, depth: int) -> None:
    if depth == 0:
        if not (isinstance(value, list) and len(value) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                        for v in value)):
            raise GeographyError("Invalid GeoJSON: a position must be [longitude, latitude]")
        return
    if not isinstance(value, list):
        raise GeographyError("Invalid GeoJSON: coordinates must be arrays")
    for item in value:
        _check_positions(item, depth - 1)


_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2,
          "MultiPolygon": 3}


def _check_geojson(obj) -> None:
    kind = obj.get("type") if isinstance(obj, dict) else None
    if kind not in _GEOJSON_TYPES:
        raise GeographyError(f"Invalid GeoJSON: type {kind!r} is not a GeoJSON geometry "
                             "(Feature and FeatureCollection are not accepted)")
    if kind == "GeometryCollection":
        for part in obj.get("geometries") or []:
            _check_geojson(part)
        return
    _check_positions(obj.get("coordinates"), _DEPTH[kind])


def from_geojson(text: str):
    from shapely.geometry import shape

    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise GeographyError(f"Invalid GeoJSON: {exc}") from None
    _check_geojson(obj)
    try:
        geom = shape(obj)
    except Exception as exc:  # noqa: BLE001
        raise GeographyError(f"Invalid GeoJSON: {_short(exc)}") from None
    value = from_shapely(geom)
    _check_planar_edges(value, "GeoJSON input")
    return value


def from_wkb(data: bytes):
    shapely = _shapely()
    try:
        geom = shapely.from_wkb(data)
    except Exception as exc:  # noqa: BLE001
        raise GeographyError(f"Invalid WKB: {_short(exc)}") from None
    return from_shapely(geom)


_HEX = re.compile(r"^\s*[0-9a-fA-F]+\s*$")


def from_text(text: str, fmt: str = "auto"):
    """A geography from text: WKT, GeoJSON or WKB in hex ("auto": whichever it is, as
    loads and ST_GEOGFROM read text)."""
    if fmt == "wkt":
        return from_wkt(text)
    if fmt == "geojson":
        return from_geojson(text)
    if fmt == "wkbhex":
        if not _HEX.match(text):
            raise GeographyError(f"Invalid WKB: not hexadecimal text: {text[:200]}")
        return from_wkb(bytes.fromhex(text.strip()))
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return from_geojson(text)
    if _HEX.match(text) and len(text.strip()) % 2 == 0:
        return from_wkb(bytes.fromhex(text.strip()))
    return from_wkt(text)


def _short(exc: Exception) -> str:
    return str(exc).split("\n")[0]


# --- text -------------------------------------------------------------------------------

def _num(v: float) -> str:
    if v == int(v) and abs(v) < 1e16:
        return str(int(v))
    return repr(float(v))


def _pt(p) -> str:
    return f"{_num(p[0])} {_num(p[1])}"


def _coords(points) -> str:
    return ", ".join(_pt(p) for p in points)


def _closed(ring):
    return [*ring, ring[0]]


def _polygon_body(polygon) -> str:
    return "(" + ", ".join(f"({_coords(_closed(r))})" for r in polygon) + ")"


def _part_wkt(kind: str, items) -> str:
    if kind == "points":
        return f"POINT({_pt(items[0])})" if len(items) == 1 else \
            f"MULTIPOINT({_coords(items)})"
    if kind == "lines":
        return f"LINESTRING({_coords(items[0])})" if len(items) == 1 else \
            "MULTILINESTRING(" + ", ".join(f"({_coords(line)})" for line in items) + ")"
    return f"POLYGON{_polygon_body(items[0])}" if len(items) == 1 else \
        "MULTIPOLYGON(" + ", ".join(_polygon_body(p) for p in items) + ")"


def to_wkt(value) -> str:
    parts = [_part_wkt(kind, items) for kind, items in zip(("points", "lines", "polygons"),
                                                            value, strict=True) if items]
    if not parts:
        return "GEOMETRYCOLLECTION EMPTY"
    if len(parts) == 1:
        return parts[0]
    return "GEOMETRYCOLLECTION(" + ", ".join(parts) + ")"


@functools.lru_cache(maxsize=4096)
def stored(text: str):
    """A stored value (canonical WKT) read back."""
    return from_wkt(text)


def _geojson_coords(value) -> str:
    if isinstance(value, tuple):
        return f"[{_num(value[0])}, {_num(value[1])}]"
    return "[ " + ", ".join(_geojson_coords(v) for v in value) + " ]"


def _geojson_part(kind: str, items) -> list[str]:
    if kind == "points":
        if len(items) == 1:
            return [f'{{ "type": "Point", "coordinates": {_geojson_coords(items[0])} }}']
        return [f'{{ "type": "MultiPoint", "coordinates": {_geojson_coords(items)} }}']
    if kind == "lines":
        if len(items) == 1:
            return [f'{{ "type": "LineString", "coordinates": {_geojson_coords(items[0])} }}']
        return [f'{{ "type": "MultiLineString", "coordinates": {_geojson_coords(items)} }}']
    rings = [[_closed(r) for r in p] for p in items]
    if len(items) == 1:
        return [f'{{ "type": "Polygon", "coordinates": {_geojson_coords(rings[0])} }}']
    return [f'{{ "type": "MultiPolygon", "coordinates": {_geojson_coords(rings)} }}']


def to_geojson(value) -> str:
    """ST_ASGEOJSON's text ({ "type": "Point", "coordinates": [1, 2] })."""
    _check_planar_edges(value, "ST_ASGEOJSON of this value")
    parts = [s for kind, items in zip(("points", "lines", "polygons"), value, strict=True)
             if items for s in _geojson_part(kind, items)]
    if len(parts) == 1:
        return parts[0]
    return '{ "type": "GeometryCollection", "geometries": [ ' + ", ".join(parts) + " ] }"


def to_shapely(value):
    from shapely.geometry import GeometryCollection, LineString, Point, Polygon

    parts = [Point(p) for p in value[0]] + [LineString(line) for line in value[1]] + [
        Polygon(_closed(p[0]), [_closed(h) for h in p[1:]]) for p in value[2]]
    if len(parts) == 1:
        return parts[0]
    return _shapely().from_wkt(to_wkt(value)) if parts else GeometryCollection()


def to_wkb(value) -> bytes:
    return _shapely().to_wkb(to_shapely(value), byte_order=1, output_dimension=2)


# --- the sphere -------------------------------------------------------------------------

def _xyz(p) -> tuple[float, float, float]:
    lon, lat = math.radians(p[0]), math.radians(p[1])
    c = math.cos(lat)
    return (c * math.cos(lon), c * math.sin(lon), math.sin(lat))


def _dot(a, b) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a, b):
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _norm(a) -> float:
    return math.sqrt(_dot(a, a))


def _angle(a, b) -> float:
    """The central angle between two unit vectors (atan2: exact for near and far)."""
    return math.atan2(_norm(_cross(a, b)), _dot(a, b))


def _signed_area(ring) -> float:
    """The signed area (steradians) a ring bounds: positive counterclockwise; the sum of
    the triangles (v0, vi, vi+1), each by Van Oosterom and Strackee's formula."""
    v = [_xyz(p) for p in ring]
    total = 0.0
    for i in range(1, len(v) - 1):
        a, b, c = v[0], v[i], v[i + 1]
        total += 2 * math.atan2(_dot(a, _cross(b, c)),
                                1 + _dot(a, b) + _dot(b, c) + _dot(c, a))
    return total


def _point_arc(p, a, b) -> float:
    """The central angle from unit vector p to the minor arc a-b."""
    n = _cross(a, b)
    length = _norm(n)
    if length < 1e-15:
        return min(_angle(p, a), _angle(p, b))
    n = tuple(x / length for x in n)
    # p's projection onto the arc's great circle, and whether it lies between a and b
    off = _dot(p, n)
    q = tuple(pi - off * ni for pi, ni in zip(p, n, strict=True))
    if _norm(q) > 1e-15 and _dot(_cross(a, q), n) >= 0 and _dot(_cross(q, b), n) >= 0:
        return abs(math.asin(max(-1.0, min(1.0, off))))
    return min(_angle(p, a), _angle(p, b))


def _vertices(value):
    points, lines, polygons = value
    return [*points, *(p for line in lines for p in line),
            *(p for polygon in polygons for ring in polygon for p in ring)]


def _edges(value):
    _, lines, polygons = value
    for line in lines:
        yield from zip(line, line[1:], strict=False)
    for polygon in polygons:
        for ring in polygon:
            yield from zip(ring, [*ring[1:], ring[0]], strict=True)


def _is_empty(value) -> bool:
    return not any(value)


def distance(a, b) -> float | None:
    """ST_DISTANCE in metres on the sphere; None when either is empty."""
    if _is_empty(a) or _is_empty(b):
        return None
    if not (a[1] or a[2] or b[1] or b[2]):  # points only
        return min(_angle(_xyz(p), _xyz(q)) for p in a[0] for q in b[0]) * RADIUS_M
    if relate(a, b, "intersects"):
        return 0.0
    best = math.inf
    for one, other in ((a, b), (b, a)):
        edges = [(_xyz(p), _xyz(q)) for p, q in _edges(other)]
        others = [_xyz(p) for p in other[0]]
        for p in _vertices(one):
            v = _xyz(p)
            for s, e in edges:
                best = min(best, _point_arc(v, s, e))
            for q in others:
                best = min(best, _angle(v, q))
    return best * RADIUS_M


def length(value) -> float:
    return sum(_angle(_xyz(p), _xyz(q)) for line in value[1]
               for p, q in zip(line, line[1:], strict=False)) * RADIUS_M


def area(value) -> float:
    total = 0.0
    for polygon in value[2]:
        total += abs(_signed_area(polygon[0])) - sum(abs(_signed_area(h)) for h in polygon[1:])
    return total * RADIUS_M * RADIUS_M


def _gnomonic(values):
    """A function mapping (lon, lat) to the plane of the gnomonic projection about the
    values' centre, in which geodesics are straight lines; refused beyond a hemisphere."""
    vs = [_xyz(p) for value in values for p in _vertices(value)]
    centre = tuple(sum(v[i] for v in vs) for i in range(3))
    size = _norm(centre)
    if size < 1e-9 * max(1, len(vs)):
        raise GeographyUnsupported("Geography predicates and validity checks on shapes "
                                   "wider than a hemisphere")
    c = tuple(x / size for x in centre)
    helper = (1.0, 0.0, 0.0) if abs(c[0]) < 0.9 else (0.0, 1.0, 0.0)
    e1 = _cross(c, helper)
    e1 = tuple(x / _norm(e1) for x in e1)
    e2 = _cross(c, e1)
    if min(_dot(v, c) for v in vs) <= 1e-6:
        raise GeographyUnsupported("Geography predicates and validity checks on shapes "
                                   "wider than a hemisphere")

    def project(p):
        v = _xyz(p)
        d = _dot(v, c)
        return (_dot(v, e1) / d, _dot(v, e2) / d)

    return project


def _projected(value, project):
    from shapely.geometry import GeometryCollection, LineString, Point, Polygon

    parts = [Point(project(p)) for p in value[0]] + \
        [LineString([project(p) for p in line]) for line in value[1]] + \
        [Polygon(_closed([project(p) for p in poly[0]]),
                 [_closed([project(p) for p in h]) for h in poly[1:]]) for poly in value[2]]
    return GeometryCollection(parts)


def _components(value):
    points, lines, polygons = value
    return [([p], [], []) for p in points] + [([], [line], []) for line in lines] + \
        [([], [], [polygon]) for polygon in polygons]


def _cap(value):
    """(centre, radius) of a spherical cap holding the value, or None past a hemisphere
    (a cap under 90 degrees is convex: it holds the edges between its vertices too)."""
    vs = [_xyz(p) for p in _vertices(value)]
    centre = tuple(sum(v[i] for v in vs) for i in range(3))
    size = _norm(centre)
    if size < 1e-9 * len(vs):
        return None
    c = tuple(x / size for x in centre)
    radius = max(_angle(c, v) for v in vs)
    return (c, radius) if radius < math.pi / 2 - 1e-9 else None


def _apart(a, b) -> bool:
    """True when the values lie in disjoint caps (so nothing of one touches the other)."""
    ca, cb = _cap(a), _cap(b)
    return ca is not None and cb is not None and _angle(ca[0], cb[0]) > ca[1] + cb[1] + 1e-12


def relate(a, b, predicate: str) -> bool:
    """ST_INTERSECTS, ST_DISJOINT, ST_CONTAINS, ST_WITHIN, ST_COVERS, ST_COVEREDBY and
    ST_EQUALS (OGC's relations of closed point sets, as BigQuery's docs define them)."""
    if predicate == "disjoint":
        return not relate(a, b, "intersects")
    if _is_empty(a) or _is_empty(b):
        return predicate == "equals" and _is_empty(a) and _is_empty(b)
    if _apart(a, b):
        return False
    if predicate == "intersects" and len(_components(a)) + len(_components(b)) > 2:
        # part by part, so far-apart parts need no common hemisphere
        return any(relate(pa, pb, "intersects") for pa in _components(a)
                   for pb in _components(b))
    project = _gnomonic([a, b])
    ga, gb = _projected(a, project), _projected(b, project)
    shapely = _shapely()
    ga, gb = shapely.union_all(ga.geoms), shapely.union_all(gb.geoms)
    method = {"coveredby": "covered_by"}.get(predicate, predicate)
    return bool(getattr(ga, method)(gb))


def _check_planar_edges(value, what: str) -> None:
    """GeoJSON's edges are planar: one whose geodesic strays more than 10 m from it would
    get extra vertices from BigQuery; refused here rather than given other ones."""
    for p, q in _edges(value):
        a, b = _xyz(p), _xyz(q)
        for t in (0.25, 0.5, 0.75):
            mid = (p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t)
            if _point_arc(_xyz(mid), a, b) * RADIUS_M > GEOJSON_TOLERANCE_M:
                raise GeographyUnsupported(
                    f"{what} with an edge ({_pt(p)} to {_pt(q)}) whose planar and geodesic "
                    "forms are more than 10 m apart (BigQuery adds vertices to it)")


# --- UDFs (registered on the database) ---------------------------------------------------

def _parse_udf(text: str, fmt: str) -> str:
    return to_wkt(from_text(text, fmt))


def _wkb_udf(data: bytes) -> str:
    return to_wkt(from_wkb(bytes(data)))


def _point_udf(x: float, y: float) -> str:
    return to_wkt(([_check_point(x, y, wrap=True)], [], []))


def _accessor_udf(text: str, which: str) -> float:
    value = stored(text)
    if len(value[0]) != 1 or value[1] or value[2]:
        raise GeographyError(f"ST_{which.upper()} requires a point geography; got "
                             f"{text[:100]}")
    return value[0][0][0 if which == "x" else 1]


def _distance_udf(a: str, b: str) -> float | None:
    return distance(stored(a), stored(b))


def _dwithin_udf(a: str, b: str, limit: float) -> bool:
    d = distance(stored(a), stored(b))
    return d is not None and d <= limit


def _relate_udf(a: str, b: str, predicate: str) -> bool:
    return relate(stored(a), stored(b), predicate)


UDFS = {
    "__bq_geo_parse": (_parse_udf, ["VARCHAR", "VARCHAR"], "VARCHAR"),
    "__bq_geo_wkb": (_wkb_udf, ["BLOB"], "VARCHAR"),
    "__bq_geo_point": (_point_udf, ["DOUBLE", "DOUBLE"], "VARCHAR"),
    "__bq_geo_xy": (_accessor_udf, ["VARCHAR", "VARCHAR"], "DOUBLE"),
    "__bq_geo_geojson": (lambda t: to_geojson(stored(t)), ["VARCHAR"], "VARCHAR"),
    "__bq_geo_asbinary": (lambda t: to_wkb(stored(t)), ["VARCHAR"], "BLOB"),
    "__bq_geo_distance": (_distance_udf, ["VARCHAR", "VARCHAR"], "DOUBLE"),
    "__bq_geo_dwithin": (_dwithin_udf, ["VARCHAR", "VARCHAR", "DOUBLE"], "BOOLEAN"),
    "__bq_geo_length": (lambda t: length(stored(t)), ["VARCHAR"], "DOUBLE"),
    "__bq_geo_area": (lambda t: area(stored(t)), ["VARCHAR"], "DOUBLE"),
    "__bq_geo_relate": (_relate_udf, ["VARCHAR", "VARCHAR", "VARCHAR"], "BOOLEAN"),
}


def register(db) -> None:
    """Registers the UDFs the SQL of this module calls (where FARM_FINGERPRINT is)."""
    for name, (function, params, result) in UDFS.items():
        db.create_function(name, function, params, result)


# --- SQL --------------------------------------------------------------------------------

def wrap_sql(text_sql: str) -> str:
    """SQL making a GEOGRAPHY of canonical WKT."""
    return f'struct_pack("{FIELD}" := {text_sql})'


def text_sql(geo_sql: str) -> str:
    """SQL giving a GEOGRAPHY's WKT."""
    return f"struct_extract({geo_sql}, '{FIELD}')"


def from_text_sql(expr: str, fmt: str = "auto") -> str:
    """SQL reading text (WKT, GeoJSON, hex WKB) as a GEOGRAPHY; NULL stays NULL."""
    return (f"CASE WHEN ({expr}) IS NULL THEN NULL ELSE "
            f"{wrap_sql(f'__bq_geo_parse(({expr})::VARCHAR, {_str(fmt)})')} END")


def from_wkb_sql(expr: str) -> str:
    return (f"CASE WHEN ({expr}) IS NULL THEN NULL ELSE "
            f"{wrap_sql(f'__bq_geo_wkb(({expr})::BLOB)')} END")


def as_text_select(columns: list[str], types: list) -> str:
    """A SELECT list giving the columns with each top-level GEOGRAPHY as its WKT (what
    extracts write)."""
    from labkit.bigquery.schema import marked, quote

    return ", ".join(f"{text_sql(quote(c))} AS {quote(c)}" if marked(t) == "GEOGRAPHY"
                     else quote(c) for c, t in zip(columns, types, strict=True))


def _str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _null_safe(args: list[str], body: str) -> str:
    nulls = " OR ".join(f"({a}) IS NULL" for a in args)
    return f"CASE WHEN {nulls} THEN NULL ELSE {body} END"


def _function_sql(name: str, args: list[str]) -> str:
    g = [text_sql(a) for a in args]
    if name == "ST_GEOGPOINT":
        return _null_safe(args, wrap_sql(f"__bq_geo_point(CAST({args[0]} AS DOUBLE), "
                                         f"CAST({args[1]} AS DOUBLE))"))
    if name == "ST_GEOGFROMTEXT":
        return from_text_sql(args[0], "wkt")
    if name == "ST_GEOGFROMGEOJSON":
        return from_text_sql(args[0], "geojson")
    if name == "ST_GEOGFROM":
        a = args[0]
        return (f"CASE WHEN typeof({a}) = 'BLOB' THEN {from_wkb_sql(a)} "
                f"ELSE {from_text_sql(a, 'auto')} END")
    if name == "ST_GEOGFROMWKB":
        a = args[0]
        return (f"CASE WHEN typeof({a}) = 'BLOB' THEN {from_wkb_sql(a)} "
                f"ELSE {from_text_sql(a, 'wkbhex')} END")
    if name == "ST_ASTEXT":
        return g[0]
    if name == "ST_ASGEOJSON":
        return f"__bq_geo_geojson({g[0]})"
    if name == "ST_ASBINARY":
        return f"__bq_geo_asbinary({g[0]})"
    if name in ("ST_X", "ST_Y"):
        return f"__bq_geo_xy({g[0]}, {_str(name[-1].lower())})"
    if name == "ST_DISTANCE":
        return f"__bq_geo_distance({g[0]}, {g[1]})"
    if name == "ST_DWITHIN":
        return f"__bq_geo_dwithin({g[0]}, {g[1]}, CAST({args[2]} AS DOUBLE))"
    if name == "ST_LENGTH":
        return f"__bq_geo_length({g[0]})"
    if name == "ST_AREA":
        return f"__bq_geo_area({g[0]})"
    if name in _PREDICATES:
        return f"__bq_geo_relate({g[0]}, {g[1]}, {_str(name[3:].lower())})"
    raise AssertionError(name)


_PREDICATES = {"ST_INTERSECTS", "ST_DISJOINT", "ST_CONTAINS", "ST_WITHIN", "ST_COVERS",
               "ST_COVEREDBY", "ST_EQUALS"}
# name -> (fewest, most arguments, index of a use_spheroid / oriented flag that must be FALSE)
FUNCTIONS = {
    "ST_GEOGPOINT": (2, 2, None), "ST_GEOGFROMTEXT": (1, 2, 1),
    "ST_GEOGFROMGEOJSON": (1, 1, None), "ST_GEOGFROMWKB": (1, 1, None),
    "ST_GEOGFROM": (1, 1, None), "ST_ASTEXT": (1, 1, None), "ST_ASGEOJSON": (1, 1, None),
    "ST_ASBINARY": (1, 1, None), "ST_X": (1, 1, None), "ST_Y": (1, 1, None),
    "ST_DISTANCE": (2, 3, 2), "ST_DWITHIN": (3, 4, 3), "ST_LENGTH": (1, 2, 1),
    "ST_AREA": (1, 2, 1), **{name: (2, 2, None) for name in _PREDICATES},
}


def handles(name: str) -> bool:
    return name.upper() in FUNCTIONS


def rewrite(node):
    """The DuckDB expression for one of FUNCTIONS (a sqlglot node, arguments rewritten)."""
    import sqlglot
    from sqlglot import exp

    from labkit.bigquery.errors import invalid_query, unsupported

    name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).upper()
    if isinstance(node, exp.Anonymous):
        args = list(node.expressions)
    else:
        args = [node.args[k] for k in node.arg_types if node.args.get(k) is not None]
    fewest, most, flag = FUNCTIONS[name]
    if any(isinstance(a, (exp.Kwarg, exp.PropertyEQ)) for a in args):
        raise unsupported(f"{name} with named arguments (oriented, planar, make_valid)")
    if not fewest <= len(args) <= most:
        raise invalid_query(f"No matching signature for function {name}: it takes "
                            f"{fewest if fewest == most else f'{fewest} to {most}'} "
                            f"argument{'s' if most > 1 else ''}")
    if flag is not None and len(args) > flag:
        value = args.pop(flag)
        if not (isinstance(value, exp.Boolean) and value.this is False):
            what = "oriented" if name == "ST_GEOGFROMTEXT" else "use_spheroid"
            raise unsupported(f"{name} with {what} other than FALSE")
    sql = _function_sql(name, [a.sql(dialect="duckdb") for a in args])
    return exp.Paren(this=sqlglot.parse_one(sql, read="duckdb"))


_MAKERS = {"ST_GEOGPOINT", "ST_GEOGFROMTEXT", "ST_GEOGFROMGEOJSON", "ST_GEOGFROMWKB",
           "ST_GEOGFROM"}


def _makes_geography(node) -> bool:
    from sqlglot import exp

    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Anonymous):
        return node.name.upper() in _MAKERS
    return isinstance(node, exp.Cast) and is_geography_type(node.to)


def check_comparisons(tree) -> None:
    """GEOGRAPHY is not comparable in BigQuery (=, <, IN, ...): refused where an operand is
    visibly one (a constructor or a CAST); columns would need their types, unknown here."""
    from sqlglot import exp

    from labkit.bigquery.errors import invalid_query

    for node in tree.find_all(exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE, exp.In):
        operands = [node.this, *(node.expressions if isinstance(node, exp.In)
                                 else [node.expression])]
        if any(_makes_geography(o) for o in operands if o is not None):
            op = {"eq": "=", "neq": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">=",
                  "in": "IN"}[node.key]
            raise invalid_query(f"No matching signature for operator {op} for argument "
                                "types of type GEOGRAPHY: GEOGRAPHY values cannot be "
                                "compared; use ST_EQUALS or ST_DWITHIN")


def is_geography_type(node) -> bool:
    """A sqlglot DataType that is GEOGRAPHY (already rewritten to its marked STRUCT)."""
    from sqlglot import exp

    if not isinstance(node, exp.DataType):
        return False
    members = node.expressions
    return node.this == exp.DataType.Type.GEOGRAPHY or (
        node.this == exp.DataType.Type.STRUCT and len(members) == 1
        and members[0].name == FIELD)


def cast(node):
    """CAST(x AS GEOGRAPHY): BigQuery casts nothing but a GEOGRAPHY to GEOGRAPHY (its
    conversion rules list no other); text is read with the ST_GEOGFROM* functions. DuckDB
    would read struct-shaped text ('{bq$geography: ...}') unchecked: refused here."""
    import sqlglot
    from sqlglot import exp

    x = node.this.sql(dialect="duckdb")
    sql = (f"CASE WHEN typeof({x}) IN ({_str(DUCK_TYPE)}, '\"NULL\"') "
           f"THEN CAST({x} AS {DUCK_TYPE}) "
           f"ELSE error('Invalid cast from ' || typeof({x}) || ' to GEOGRAPHY: read text "
           f"with ST_GEOGFROMTEXT, ST_GEOGFROMGEOJSON or ST_GEOGFROMWKB') END")
    return exp.Paren(this=sqlglot.parse_one(sql, read="duckdb"))


# --- Arrow (the Storage Read API and extracts) -------------------------------------------

# every marked STRUCT leaves as its one field (storage_read._cast)
ARROW_METADATA = {b"ARROW:extension:name": b"google:sqlType:geography",
                  b"ARROW:extension:metadata": b'{"encoding": "WKT"}'}
