// Seat expansion of a scene file (scenes/FORMAT.md), the same arithmetic as
// scenes/geometry.py: /scene.json serves the file as written, and seat numbers on
// the wire index the expanded seats, so the order here must match the server's.

const ROW_SPACING = 0.95;
const SEAT_SPACING = 0.55;
const DEG = Math.PI / 180;

function round4(v) {
  return Math.round(v * 1e4) / 1e4 + 0; // close enough to Python's round(v, 4) for drawing
}

export function normalizeYaw(yaw) {
  let y = yaw % 360;
  if (y <= -180) y += 360;
  else if (y > 180) y -= 360;
  return y;
}

function counts(raw, rows) {
  return Array.isArray(raw) ? raw.map(Number) : new Array(rows).fill(Number(raw));
}

function arcCapacity(radius, start, end, spacing) {
  return Math.floor((radius * (end - start) * DEG) / spacing + 1e-9) + 1;
}

/** Seats of one section's layout in wire order: {x, y, z, yaw} (yaw in degrees). */
function* layoutSeats(layout) {
  const rows = Number(layout.rows);
  const rowSpacing = layout.row_spacing ?? ROW_SPACING;
  const seatSpacing = layout.seat_spacing ?? SEAT_SPACING;
  const rise = layout.rise_per_row ?? 0;
  if (layout.kind === "grid") {
    const yawDeg = layout.yaw_deg ?? 0;
    const r = yawDeg * DEG;
    const right = [Math.cos(r), -Math.sin(r)];
    const back = [Math.sin(r), Math.cos(r)];
    const [ox, oy, oz] = layout.origin;
    const yaw = normalizeYaw(yawDeg);
    const perRow = counts(layout.seats_per_row, rows);
    for (let row = 1; row <= rows; row++) {
      const count = perRow[row - 1];
      const depth = (row - 1) * rowSpacing;
      const y = oy + (row - 1) * rise;
      for (let n = 1; n <= count; n++) {
        const lateral = (n - 1 - (count - 1) / 2) * seatSpacing;
        yield {
          x: round4(ox + lateral * right[0] + depth * back[0]),
          y: round4(y),
          z: round4(oz + lateral * right[1] + depth * back[1]),
          yaw,
        };
      }
    }
    return;
  }
  const [cx, cy, cz] = layout.center;
  const start = layout.start_deg;
  const end = layout.end_deg;
  const middle = (start + end) / 2;
  const perRow =
    layout.seats_per_row === undefined
      ? Array.from({ length: rows }, (_, i) =>
          arcCapacity(layout.radius + i * rowSpacing, start, end, seatSpacing),
        )
      : counts(layout.seats_per_row, rows);
  for (let row = 1; row <= rows; row++) {
    const count = perRow[row - 1];
    const radius = layout.radius + (row - 1) * rowSpacing;
    const step = seatSpacing / radius / DEG;
    const y = cy + (row - 1) * rise;
    for (let n = 1; n <= count; n++) {
      const a = middle + (n - 1 - (count - 1) / 2) * step;
      yield {
        x: round4(cx + radius * Math.sin(a * DEG)),
        y: round4(y),
        z: round4(cz + radius * Math.cos(a * DEG)),
        yaw: normalizeYaw(a),
      };
    }
  }
}

/**
 * Every seat of the scene as flat arrays indexed by seat number:
 * {count, pos: Float32Array(3n), yaw: Float32Array(n) in radians}.
 */
export function expandSeats(scene) {
  const list = [];
  for (const section of scene.sections) for (const s of layoutSeats(section.layout)) list.push(s);
  const pos = new Float32Array(list.length * 3);
  const yaw = new Float32Array(list.length);
  list.forEach((s, i) => {
    pos[i * 3] = s.x;
    pos[i * 3 + 1] = s.y;
    pos[i * 3 + 2] = s.z;
    yaw[i] = s.yaw * DEG;
  });
  return { count: list.length, pos, yaw };
}
