"""GLSL 3.30 sources: one lit shader (static, instanced or skinned with morph targets, by
defines) and one for textured or flat unlit quads (panels, screens, the pointer ray).

Colours are linear in and sRGB out: the headset's swapchain is an sRGB format written
without GL_FRAMEBUFFER_SRGB (graphics.py), so the shader encodes. Lighting: a sky/ground
hemisphere, a key light, the stage spot on the clone's mark, a little rim light.
"""

LIT_VS = """
layout(location = 0) in vec3 aPos;
layout(location = 1) in vec3 aNormal;
layout(location = 2) in vec3 aColor;
layout(location = 3) in vec2 aUV;
#ifdef SKINNED
layout(location = 4) in uvec4 aJoints;
layout(location = 5) in vec4 aWeights;
uniform samplerBuffer uJoints;   // 4 texels (the matrix's columns) per joint
uniform samplerBuffer uMorphPos; // target * vertexCount + vertex
uniform samplerBuffer uMorphNrm;
uniform int uMorphCount;
uniform int uMorphIndex[16];
uniform float uMorphWeight[16];
uniform int uVertexCount;
#endif
#ifdef INSTANCED
layout(location = 6) in vec4 iM0;
layout(location = 7) in vec4 iM1;
layout(location = 8) in vec4 iM2;
layout(location = 9) in vec4 iM3;
layout(location = 10) in vec3 iColor;
#endif
uniform mat4 uModel;
uniform mat4 uViewProj;
out vec3 vNormal;
out vec3 vColor;
out vec3 vWorld;
out vec2 vUV;

#ifdef SKINNED
mat4 joint(uint j) {
  int b = int(j) * 4;
  return mat4(texelFetch(uJoints, b), texelFetch(uJoints, b + 1),
              texelFetch(uJoints, b + 2), texelFetch(uJoints, b + 3));
}
#endif

void main() {
  vec3 p = aPos;
  vec3 n = aNormal;
  mat4 m = uModel;
  vec3 c = aColor;
#ifdef SKINNED
  for (int i = 0; i < uMorphCount; i++) {
    int k = uMorphIndex[i] * uVertexCount + gl_VertexID;
    p += uMorphWeight[i] * texelFetch(uMorphPos, k).xyz;
    n += uMorphWeight[i] * texelFetch(uMorphNrm, k).xyz;
  }
  mat4 skin = aWeights.x * joint(aJoints.x) + aWeights.y * joint(aJoints.y)
            + aWeights.z * joint(aJoints.z) + aWeights.w * joint(aJoints.w);
  m = m * skin;
#endif
#ifdef INSTANCED
  m = m * mat4(iM0, iM1, iM2, iM3);
  c = c * iColor;
#endif
  vec4 w = m * vec4(p, 1.0);
  vWorld = w.xyz;
  vNormal = mat3(m) * n;
  vColor = c;
  vUV = aUV;
  gl_Position = uViewProj * w;
}
"""

SKIN_VS = """
// Skinning once per frame: positions and normals in the model's space go to a transform
// feedback buffer that every view (both eyes, the screens' close-up) then draws.
layout(location = 0) in vec3 aPos;
layout(location = 1) in vec3 aNormal;
layout(location = 4) in uvec4 aJoints;
layout(location = 5) in vec4 aWeights;
uniform samplerBuffer uJoints;   // 4 texels (the matrix's columns) per joint
uniform samplerBuffer uMorphPos; // target * vertexCount + vertex
uniform samplerBuffer uMorphNrm;
uniform int uMorphCount;
uniform int uMorphIndex[16];
uniform float uMorphWeight[16];
uniform int uVertexCount;
out vec3 tPos;
out vec3 tNormal;
mat4 joint(uint j) {
  int b = int(j) * 4;
  return mat4(texelFetch(uJoints, b), texelFetch(uJoints, b + 1),
              texelFetch(uJoints, b + 2), texelFetch(uJoints, b + 3));
}
void main() {
  vec3 p = aPos;
  vec3 n = aNormal;
  for (int i = 0; i < uMorphCount; i++) {
    int k = uMorphIndex[i] * uVertexCount + gl_VertexID;
    p += uMorphWeight[i] * texelFetch(uMorphPos, k).xyz;
    n += uMorphWeight[i] * texelFetch(uMorphNrm, k).xyz;
  }
  mat4 skin = aWeights.x * joint(aJoints.x);
  if (aWeights.y > 0.0) skin += aWeights.y * joint(aJoints.y);
  if (aWeights.z > 0.0) skin += aWeights.z * joint(aJoints.z);
  if (aWeights.w > 0.0) skin += aWeights.w * joint(aJoints.w);
  tPos = (skin * vec4(p, 1.0)).xyz;
  tNormal = mat3(skin) * n;
  gl_Position = vec4(0.0);
}
"""

SKIN_FS = """
out vec4 fragColor;
void main() { fragColor = vec4(0.0); }
"""

LIT_FS = """
in vec3 vNormal;
in vec3 vColor;
in vec3 vWorld;
in vec2 vUV;
uniform vec4 uBase;
uniform int uUnlit;
uniform int uHasTex;
uniform sampler2D uTex;
uniform float uAlphaCutoff;
uniform vec3 uEye;
uniform vec3 uKeyDir;     // toward the light
uniform vec3 uKeyColor;
uniform vec3 uSky;
uniform vec3 uGround;
uniform vec3 uSpotPos;
uniform vec3 uSpotColor;
uniform vec3 uSpotDir;    // from the spot toward the clone
uniform float uFog;
out vec4 fragColor;

vec3 to_srgb(vec3 c) {
  c = clamp(c, 0.0, 1.0);
  return mix(c * 12.92, 1.055 * pow(c, vec3(1.0 / 2.4)) - 0.055, step(0.0031308, c));
}

vec3 from_srgb(vec3 c) {
  return mix(c / 12.92, pow((c + 0.055) / 1.055, vec3(2.4)), step(0.04045, c));
}

void main() {
  vec4 base = uBase * vec4(vColor, 1.0);
  if (uHasTex == 1) {
    vec4 t = texture(uTex, vUV);
    base *= vec4(from_srgb(t.rgb), t.a);
  }
  if (base.a < uAlphaCutoff) discard;
  if (uUnlit == 1) { fragColor = vec4(to_srgb(base.rgb), base.a); return; }
  vec3 n = normalize(vNormal);
  if (!gl_FrontFacing) n = -n;
  vec3 v = normalize(uEye - vWorld);
  vec3 ambient = mix(uGround, uSky, 0.5 + 0.5 * n.y);
  float key = max(dot(n, uKeyDir), 0.0);
  vec3 toSpot = uSpotPos - vWorld;
  float dist = length(toSpot);
  vec3 l = toSpot / dist;
  float cone = smoothstep(0.86, 0.95, dot(-l, uSpotDir));
  float spot = max(dot(n, l), 0.0) * 40.0 / (dist * dist) * cone;
  float rim = 1.0 - max(dot(n, v), 0.0);
  vec3 c = base.rgb * (ambient + uKeyColor * key + uSpotColor * spot);
  c += rim * rim * rim * uSky * 0.12;
  float fog = 1.0 - exp(-uFog * length(uEye - vWorld));
  c = mix(c, uGround * 0.6, clamp(fog, 0.0, 0.6));
  fragColor = vec4(to_srgb(c), base.a);
}
"""

QUAD_VS = """
layout(location = 0) in vec3 aPos;
layout(location = 3) in vec2 aUV;
uniform mat4 uModel;
uniform mat4 uViewProj;
out vec2 vUV;
void main() {
  vUV = aUV;
  gl_Position = uViewProj * uModel * vec4(aPos, 1.0);
}
"""

QUAD_FS = """
in vec2 vUV;
uniform sampler2D uTex;
uniform int uHasTex;
uniform vec4 uColor;
out vec4 fragColor;
void main() {
  vec4 c = uHasTex == 1 ? texture(uTex, vUV) : vec4(1.0);
  fragColor = c * uColor;  // texture data is already sRGB; shown as it is
  if (fragColor.a < 0.01) discard;
}
"""
