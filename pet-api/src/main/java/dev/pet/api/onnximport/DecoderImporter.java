package dev.pet.api.onnximport;

import dev.pet.api.LayerAnatomy;
import dev.pet.api.LinearModule;
import dev.pet.api.ModelAnatomy;
import dev.pet.api.PetException;
import dev.pet.api.onnximport.AttentionWalk.Core;
import dev.pet.api.onnximport.GraphRewiring.Residual;
import dev.pet.api.onnximport.LinearProjections.Projection;
import dev.pet.onnx.CausalLmNames;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Imports a decoder-only language model exported to ONNX ({@code torch.onnx.export}, Hugging Face Optimum, or PET
 * Runtime) and recovers its {@link ModelAnatomy}, for any family described by a {@link DecoderLayout}.
 *
 * <p>The parts: {@link LinearProjections} finds the linear modules (by weight name or node scope);
 * {@link AttentionWalk} finds each block's attention core from its output projection; {@link GraphRewiring}
 * isolates the anatomy values behind {@code Identity} nodes and folds mask chains into an additive bias. Layer
 * norms, activations (GELU/SiLU spelled as elementwise ops), RoPE and repeat_kv subgraphs may take any form: they
 * are not needed. Graphs with {@code past_key_values.N.key/value} inputs keep them, with an empty default
 * ({@code [1, heads, 0, headDim]}, broadcast over the batch), and a {@code position_ids} input is kept with an empty
 * default that means "past, past+1, ..." when not fed, so that training and evaluation need only the
 * token ids and the mask; {@link #requireGraphInputs} drops the defaults again for exports, which so keep the graph's own
 * inputs and outputs (ONNX Runtime's Java API cannot feed an input that has a default).
 *
 * <p>The input model is not changed: the import works on a copy. Parts not recognised are null in the anatomy and
 * listed in the {@link ImportReport}; a graph with no recognised block linear, no token-id input, no logits output
 * or operators outside the standard ONNX domain fails with an {@link OnnxImportException} carrying the report,
 * never with a wrong model.
 */
public final class DecoderImporter {
    /** Oldest and newest default-domain opsets the importer reads. */
    public static final long MIN_OPSET = 13;
    public static final long MAX_OPSET = 21;
    private static final Pattern PAST = Pattern.compile("past_key_values\\.(\\d+)\\.(key|value)");

    /**
     * The import: the rewired model, its anatomy and what was found.
     *
     * @param model     the imported model (a rewired copy)
     * @param anatomy   recovered anatomy; unrecognised per-layer parts are null, heads -1 when unknown
     * @param lmHead    the LM head projection, or null
     * @param embedding the token embedding table [vocab, hidden], or null
     * @param report    what was and was not recognised
     */
    public record ImportedDecoder(Model model, ModelAnatomy anatomy, LinearModule lmHead, Tensor embedding,
            ImportReport report) {
        public ImportedDecoder {
            Objects.requireNonNull(model, "model");
            Objects.requireNonNull(anatomy, "anatomy");
            Objects.requireNonNull(report, "report");
        }

        /** The block linear at {@code layerPrefix + layer + "." + part}, or null. */
        public LinearModule linear(int layer, String part) {
            return anatomy.linears().stream().filter(l -> l.layer() == layer && l.path().endsWith("." + part))
                    .findFirst().orElse(null);
        }
    }

    private final Model model;
    private final Graph g;
    private final String source;
    private final DecoderLayout layout;
    private final Long headsHint;
    private final GraphRewiring rewiring;
    private final Map<String, String> recognised = new LinkedHashMap<>();
    private final Map<String, String> unrecognised = new LinkedHashMap<>();
    private final List<String> notes = new ArrayList<>();
    private final TreeMap<Integer, Map<String, String>> layerFound = new TreeMap<>();
    private final TreeMap<Integer, Map<String, String>> layerMissing = new TreeMap<>();
    private final List<Integer> unmasked = new ArrayList<>();
    private Map<String, Projection> linears;
    private Long heads;
    private Long headDim;
    private Long kvHeads;
    private Long repeats;

    private DecoderImporter(Model model, String source, DecoderLayout layout, Long headsHint) {
        this.model = model;
        this.g = model.graph();
        this.source = source;
        this.layout = layout;
        this.headsHint = headsHint;
        this.rewiring = new GraphRewiring(g, (int) model.opset());
    }

    /**
     * Imports a copy of {@code model}; {@code source} names it in messages; {@code headsHint} (from the export's
     * config, or null) is used when the graph does not show the number of heads.
     */
    public static ImportedDecoder importModel(Model model, String source, DecoderLayout layout, Long headsHint) {
        return importModel(model, source, layout, headsHint, null);
    }

    /**
     * As {@link #importModel(Model, String, DecoderLayout, Long)}; {@code merged} says how an Optimum merged decoder
     * was read ({@link OnnxExport#merged()}, null for other graphs), for the report.
     */
    public static ImportedDecoder importModel(Model model, String source, DecoderLayout layout, Long headsHint,
            String merged) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(layout, "layout");
        long opset = model.opset();
        if (opset < MIN_OPSET || opset > MAX_OPSET) {
            throw new PetException(source + ": ONNX opset " + opset + " is not supported; expected " + MIN_OPSET
                    + "-" + MAX_OPSET + " (torch.onnx.export with opset_version 14-21, or Optimum)");
        }
        DecoderImporter importer = new DecoderImporter(model.copy(), source, layout, headsHint);
        if (merged != null) {
            importer.recognised.put("merged_decoder", merged);
        }
        return importer.run();
    }

    /**
     * The model with the graph's own inputs required again: drops the empty defaults the import gave
     * {@code past_key_values.*} and {@code position_ids} inputs (initializers of the same name with an empty axis),
     * so generation and exports feed them as the original graph did. Other models are returned unchanged.
     */
    public static Model requireGraphInputs(Model model) {
        Graph g = model.graph();
        for (Value in : g.inputs()) {
            Tensor t = g.initializer(in.name());
            if (t != null && t.elementCount() == 0 && (PAST.matcher(in.name()).matches()
                    || in.name().equals(CausalLmNames.POSITION_IDS))) {
                g.removeInitializer(in.name());
            }
        }
        return model;
    }

    private ImportedDecoder run() {
        Map<String, Long> foreignOps = foreignOps();
        linears = LinearProjections.find(g, layout, notes);
        int layerCount = layerCount();
        List<LayerAnatomy> layers = new ArrayList<>();
        for (int i = 0; i < layerCount; i++) {
            layers.add(layer(i));
        }
        Value ids = inputIds();
        Value mask = attentionMask();
        Tensor embedding = embedding(ids);
        if (ids != null) {
            positionInput(ids);
        }
        Value positionIds = positionIds();
        Value logits = logits(embedding);
        Projection head = linears.get(layout.lmHead());
        if (head != null) {
            recognised.put(layout.lmHead(), head.describe() + " (not listed among the anatomy's linears, as for a "
                    + "provider's own graph)");
        } else {
            unrecognised.put(layout.lmHead(), "no MatMul/Gemm with a constant weight named '" + layout.lmHead()
                    + ".weight' or under node scope '/" + layout.lmHead().replace('.', '/') + "/'");
        }
        Projection attnOut = linears.values().stream()
                .filter(p -> layout.attentionOutput().equals(p.module().part())).findFirst().orElse(null);
        long hidden = embedding != null ? embedding.dim(1) : attnOut != null ? attnOut.out() : -1;
        long numHeads = numHeads(hidden);
        List<LinearModule> mods = linears.values().stream().filter(p -> p.module().layer() >= 0)
                .sorted(Comparator.comparingInt((Projection p) -> p.module().layer())
                        .thenComparingInt(p -> layout.layerLinears().indexOf(p.module().part())))
                .map(Projection::toModule).toList();
        ImportReport report = report(layerCount);
        if (mods.isEmpty() || ids == null || logits == null || !foreignOps.isEmpty()) {
            throw new OnnxImportException(source + ": not importable as " + layout.family() + ": "
                    + (foreignOps.isEmpty() ? "" : "operators outside the standard ONNX domain " + foreignOps
                            + " (fused or custom ops cannot be differentiated; export without them); ")
                    + (mods.isEmpty() ? "no linear module of a transformer block was recognised (names must follow "
                            + "the Hugging Face module paths: initializer '" + layout.layerPrefix() + "0."
                            + layout.layerLinears().get(0) + ".weight' or node '" + layout.layerScope(0) + "/"
                            + layout.layerLinears().get(0).replace('.', '/') + "/MatMul'); " : "")
                    + (ids == null ? "no token-id input; " : "")
                    + (logits == null ? "no logits output: graph outputs " + g.outputs().stream()
                            .map(v -> "'" + v.name() + "' " + v.type()).toList() + " (expected 'logits' [batch, "
                            + "sequence, vocab]); " : ""), report);
        }
        pastInputs(ids, numHeads, numHeads > 0 && hidden > 0 ? hidden / numHeads : -1);
        causalMask(layers, ids, mask);
        List<String> others = g.inputs().stream().filter(v -> v != ids && v != mask && g.initializer(v.name()) == null)
                .map(Value::name).toList();
        if (!others.isEmpty()) {
            unrecognised.put("inputs", "graph inputs " + others + " have no default; training and evaluation feed only "
                    + "the token ids and the attention mask (export without them, e.g. position ids computed "
                    + "in-graph)");
        }
        g.removeUnused();
        g.sortTopologically();
        long headDim = this.headDim != null ? this.headDim : numHeads > 0 ? hidden / numHeads : -1;
        ModelAnatomy anatomy = new ModelAnatomy(layers, mods, hidden, numHeads, headDim, ids.name(), name(mask),
                name(positionIds), logits.name(), numKeyValueHeads(numHeads));
        return new ImportedDecoder(model, anatomy, head == null ? null : head.toModule(), embedding,
                report(layerCount));
    }

    private ImportReport report(int layerCount) {
        List<ImportReport.LayerReport> lr = new ArrayList<>();
        for (int i = 0; i < layerCount; i++) {
            lr.add(new ImportReport.LayerReport(i, layerFound.getOrDefault(i, Map.of()),
                    layerMissing.getOrDefault(i, Map.of())));
        }
        return new ImportReport(layout.family(), source, layout.layerPrefix(), recognised, unrecognised, lr, notes);
    }

    private Map<String, Long> foreignOps() {
        Map<String, Long> ops = new TreeMap<>();
        for (Node n : g.nodes()) {
            if (!n.domain().isEmpty() && !n.domain().equals("ai.onnx")) {
                ops.merge(n.domain() + "." + n.opType(), 1L, Long::sum);
            }
        }
        if (!ops.isEmpty()) {
            unrecognised.put("operators", "custom-domain operators " + ops);
        }
        return ops;
    }

    private boolean isInitializer(Value v) {
        return v != null && g.initializer(v.name()) != null && !v.isGraphInput();
    }

    private int layerCount() {
        int max = -1;
        for (Projection p : linears.values()) {
            max = Math.max(max, p.module().layer());
        }
        for (Node n : g.nodes()) {
            max = Math.max(max, layout.layerOfNode(n.name()));
        }
        return max + 1;
    }

    // ---- one block -----------------------------------------------------------------------------------------

    private void found(int layer, String part, String how) {
        layerFound.computeIfAbsent(layer, k -> new LinkedHashMap<>()).put(part, how);
    }

    private void missing(int layer, String part, String why) {
        layerMissing.computeIfAbsent(layer, k -> new LinkedHashMap<>()).put(part, why);
    }

    private Projection linear(int layer, String part) {
        return linears.get(layout.layerPrefix() + layer + "." + part);
    }

    private LayerAnatomy layer(int i) {
        String scope = layout.layerScope(i);
        for (String part : layout.layerLinears()) {
            Projection p = linear(i, part);
            if (p != null) {
                found(i, part, p.describe());
            } else {
                missing(i, part, "no Gemm/MatMul with a constant 2-D weight named '" + layout.layerPrefix() + i + "."
                        + part + ".weight' or under node scope '" + layout.scopesOf(i, part).get(0) + "'");
            }
        }
        for (String norm : layout.layerNorms()) {
            List<String> scopes = layout.scopesOf(i, norm);
            List<String> ops = g.nodes().stream().filter(n -> scopes.stream().anyMatch(n.name()::startsWith))
                    .map(Node::opType).distinct().toList();
            if (ops.isEmpty()) {
                missing(i, norm, "no node under scope '" + scopes.get(0) + "'");
            } else {
                found(i, norm, ops.contains("LayerNormalization") ? "LayerNormalization"
                        : ops.contains("SimplifiedLayerNormalization") ? "SimplifiedLayerNormalization"
                        : "decomposed " + ops);
            }
        }
        String[] attn = attention(i, scope + "/" + attentionScope());
        Residual attnOut = residual(i, scope, layout.attentionOutput(), "attention_output",
                "residual_after_attention");
        Residual mlpOut = residual(i, scope, layout.mlpOutput(), "mlp_output", "residual_after_mlp");
        return new LayerAnatomy(i, attn[0], attn[1], attn[2], name(attnOut == null ? null : attnOut.output()),
                name(mlpOut == null ? null : mlpOut.output()), name(attnOut == null ? null : attnOut.add().output(0)),
                name(mlpOut == null ? null : mlpOut.add().output(0)));
    }

    private static String name(Value v) {
        return v == null ? null : v.name();
    }

    /** The attention module's scope below a block ({@code attn}, {@code self_attn}). */
    private String attentionScope() {
        String out = layout.attentionOutput();
        int dot = out.lastIndexOf('.');
        return dot < 0 ? "attn" : out.substring(0, dot).replace('.', '/');
    }

    private Residual residual(int i, String scope, String part, String outName, String resName) {
        Projection p = linear(i, part);
        if (p == null) {
            missing(i, outName, "needs " + part);
            missing(i, resName, "needs " + part);
            return null;
        }
        String sub = part.substring(0, Math.max(0, part.lastIndexOf('.'))).replace('.', '/');
        StringBuilder why = new StringBuilder("the output of " + p.module().path() + " does not reach a residual "
                + "Add through single-use Reshape/Identity/Dropout/Cast");
        Residual r = rewiring.residual(p.output(), scope, scope + "/" + sub + "/output", why);
        if (r == null) {
            missing(i, outName, why.toString());
            missing(i, resName, why.toString());
            return null;
        }
        found(i, outName, "'" + r.output().name() + "' (Identity of the output of " + p.module().path() + ")");
        found(i, resName, "'" + r.add().output(0).name() + "' (" + r.add().describe() + ")");
        return r;
    }

    /** Key, value and additive bias entering block {@code i}'s attention. */
    private String[] attention(int i, String scope) {
        String[] r = new String[3];
        Projection proj = linear(i, layout.attentionOutput());
        if (proj == null) {
            for (String p : List.of("key", "value", "attention_bias")) {
                missing(i, p, "needs " + layout.attentionOutput() + " to find the attention core");
            }
            return r;
        }
        Core core = AttentionWalk.from(proj.input());
        core.missing().forEach((part, why) -> missing(i, part, why));
        if (heads == null && core.heads() != null) {
            heads = core.heads();
        }
        if (headDim == null && core.headDim() != null) {
            headDim = core.headDim();
        }
        if (kvHeads == null && core.kvHeads() != null) {
            kvHeads = core.kvHeads();
        }
        if (repeats == null && core.repeats() != null) {
            repeats = core.repeats();
        }
        if (core.value() != null) {
            Value v = rewiring.isolate(core.value().reader(), core.value().index(), scope, scope + "/value");
            r[1] = v.name();
            found(i, "value", "'" + v.name() + "' (Identity before " + core.value().reader().describe() + ")");
        }
        if (core.key() != null) {
            Value k = rewiring.isolate(core.key().reader(), core.key().index(), scope, scope + "/key");
            r[0] = k.name();
            found(i, "key", "'" + k.name() + "' (Identity before " + core.key().reader().describe() + ")");
        }
        if (core.softmax() != null && core.maskSteps().isEmpty()) {
            unmasked.add(i);
        }
        if (core.softmax() != null && !core.maskSteps().isEmpty()) {
            List<String> folded = new ArrayList<>();
            Value bias = rewiring.attentionBias(core.softmax(), core.maskSteps(), core.scores(), scope,
                    scope + "/attention_bias", folded);
            r[2] = bias.name();
            if (folded.isEmpty()) {
                found(i, "attention_bias", "'" + bias.name() + "' (Identity of the additive mask)");
            } else {
                notes.add(layout.layerPrefix() + i + ": folded " + folded + " into the additive attention bias '"
                        + bias.name() + "' (scores + bias; masked entries stay at the fill value, equal after "
                        + "softmax)");
                found(i, "attention_bias", "'" + bias.name() + "' (from " + folded + ")");
            }
        }
        return r;
    }

    // ---- model level -----------------------------------------------------------------------------------------

    private Value inputIds() {
        for (Value v : g.inputs()) {
            if (v.name().equals("input_ids")) {
                recognised.put("input_ids", "graph input '" + v.name() + "'");
                return v;
            }
        }
        for (Value v : g.inputs()) {
            for (Node u : v.uses()) {
                if (u.opType().equals("Gather") && u.input(1) == v && isInitializer(u.input(0))
                        && g.initializer(u.input(0).name()).rank() == 2) {
                    recognised.put("input_ids", "graph input '" + v.name() + "' (indexes the embedding '"
                            + u.input(0).name() + "')");
                    return v;
                }
            }
        }
        unrecognised.put("input_ids", "no graph input named 'input_ids' and none indexing a 2-D embedding");
        return null;
    }

    private Value attentionMask() {
        Value mask = g.inputs().stream().filter(v -> v.name().equals("attention_mask")).findFirst().orElse(null);
        if (mask != null) {
            recognised.put("attention_mask", "graph input '" + mask.name() + "'");
        } else {
            unrecognised.put("attention_mask", "no graph input named 'attention_mask' (padding cannot be masked)");
        }
        return mask;
    }

    private Tensor embedding(Value ids) {
        for (String n : layout.embeddingWeights()) {
            if (isInitializer(g.value(n))) {
                recognised.put("embedding", "initializer '" + n + "'");
                return g.initializer(n);
            }
        }
        if (ids != null) {
            for (Node u : ids.uses()) {
                if (u.opType().equals("Gather") && u.input(1) == ids && isInitializer(u.input(0))
                        && g.initializer(u.input(0).name()).rank() == 2) {
                    recognised.put("embedding", "initializer '" + u.input(0).name() + "' gathered by "
                            + u.describe());
                    return g.initializer(u.input(0).name());
                }
            }
        }
        unrecognised.put("embedding", "no initializer " + layout.embeddingWeights() + " and no 2-D initializer "
                + "gathered by the token ids");
        return null;
    }

    /**
     * A {@code position_ids} graph input (torch and Optimum exports take it) gets an empty default and is read through
     * {@code Slice(Concat(fed, past + Range(T)), 0, T)}: the fed positions when a caller feeds them (generation and
     * exports, which number each row from its first real token), else {@code past, past+1, ...} continuing from the
     * cache length, as the families' own graphs compute them when no positions are fed. Training and evaluation so
     * feed only the tokens, and the position encoding's reader (the anatomy's {@code positionIds}, which prefix
     * tuning shifts) sees one value in every case.
     */
    private void positionInput(Value ids) {
        Value in = g.inputs().stream().filter(v -> v.name().equals(CausalLmNames.POSITION_IDS)).findFirst()
                .orElse(null);
        if (in == null) {
            return;
        }
        TensorType t = in.type();
        if ((t.dataType() != null && t.dataType() != DataType.INT64) || (t.hasRank() && t.rank() != 2)) {
            throw new OnnxImportException(source + ": graph input '" + in.name() + "' is " + t
                    + "; expected int64 [batch, sequence] position ids (Optimum and torch.onnx.export)",
                    report(0));
        }
        if (in.uses().isEmpty()) {
            g.setInitializer(in.name(), Tensor.zeros(DataType.INT64, 1, 0));
            in.setType(t);
            notes.add("graph input '" + in.name() + "' is read by no node; it defaults to empty");
            return;
        }
        List<Node> readers = List.copyOf(in.uses());
        Value past = g.inputs().stream().filter(v -> PAST.matcher(v.name()).matches()).findFirst().orElse(null);
        var b = rewiring.builder();
        String old = b.setScope("/position_ids_default");
        Value idsShape = b.shape(ids);
        Value batch = b.gather(idsShape, b.ints(0), 0);
        Value seq = b.gather(idsShape, b.scalarInt(1), 0);
        Value start = past == null ? b.scalarInt(0) : b.gather(b.shape(past), b.scalarInt(2), 0);
        Value counted = b.unsqueeze(b.range(start, b.add(start, seq), b.scalarInt(1)), 0);
        Value rows = b.concat(List.of(batch, b.ints(1)), 0);
        Value both = b.concat(List.of(b.expand(in, rows), b.expand(counted, rows)), 1);
        Value positions = b.slice(both, b.ints(0), b.unsqueeze(seq, 0), b.ints(1), b.ints(1));
        b.setScope(old);
        for (Node r : readers) {
            for (int k = 0; k < r.inputCount(); k++) {
                if (r.input(k) == in) {
                    r.setInput(k, positions);
                }
            }
        }
        g.setInitializer(in.name(), Tensor.zeros(DataType.INT64, 1, 0));
        in.setType(t); // the input keeps its declared [batch, sequence] type
        recognised.put(CausalLmNames.POSITION_IDS + " input", "graph input '" + in.name() + "' kept with an empty "
                + "default: fed positions when given (generation), else past, past+1, ... (training, evaluation)");
    }

    /**
     * The position ids as the learned position table reads them: an Identity before the indices of the table's one
     * Gather, so shifting them (prefix tuning) touches nothing else.
     */
    private Value positionIds() {
        if (layout.positionEmbeddings().isEmpty()) {
            return rotaryPositions();
        }
        List<Node> gathers = new ArrayList<>();
        for (Node n : g.nodes()) {
            if (!n.opType().equals("Gather") || n.inputCount() < 2 || !isInitializer(n.input(0))) {
                continue;
            }
            for (String table : layout.positionEmbeddings()) {
                String scope = "/" + table.replace('.', '/') + "/";
                if (n.input(0).name().equals(table + ".weight") || n.name().startsWith(scope)) {
                    gathers.add(n);
                    break;
                }
            }
        }
        if (gathers.size() != 1) {
            unrecognised.put("position_ids", gathers.isEmpty() ? "no Gather of the position table "
                    + layout.positionEmbeddings() : gathers.size() + " Gathers of the position table (expected one)");
            return null;
        }
        Node gather = gathers.get(0);
        String root = layout.positionIdsValue().substring(0, layout.positionIdsValue().lastIndexOf('/'));
        Value id = rewiring.isolate(gather, 1, root, layout.positionIdsValue());
        recognised.put("position_ids", "'" + id.name() + "' (indices of " + gather.describe() + ")");
        return id;
    }

    /**
     * The position ids as rotary embeddings read them: walking back from a {@code Cos} through the angle
     * computation (Mul/MatMul with the inverse frequencies, Concat, Transpose, Unsqueeze, Expand, Reshape) to the
     * Cast of int64 positions to float; an Identity is put before that Cast.
     */
    private Value rotaryPositions() {
        Node cos = g.nodes().stream().filter(n -> n.opType().equals("Cos") && n.domain().isEmpty()).findFirst()
                .orElse(null);
        if (cos == null) {
            unrecognised.put("position_ids", "no position table and no Cos of rotary angles");
            return null;
        }
        Node cast = positionCast(cos.input(0), 0);
        if (cast != null) {
            String root = layout.positionIdsValue().substring(0, layout.positionIdsValue().lastIndexOf('/'));
            Value id = rewiring.isolate(cast, 0, root, layout.positionIdsValue());
            recognised.put("position_ids", "'" + id.name() + "' (positions cast for the rotary angles by "
                    + cast.describe() + ")");
            return id;
        }
        unrecognised.put("position_ids", "no Cast of integer positions behind the rotary angles of " + cos.describe());
        return null;
    }

    private static final java.util.Set<String> ANGLE_OPS = java.util.Set.of("Concat", "Transpose", "Unsqueeze",
            "Expand", "Reshape", "Identity", "Mul", "MatMul", "Cast");

    /** The Cast of integer positions to float behind rotary angles, searched depth-first through angle ops. */
    private static Node positionCast(Value v, int depth) {
        Node p = v == null ? null : v.producer();
        if (p == null || depth > 16 || !ANGLE_OPS.contains(p.opType())) {
            return null;
        }
        if (p.opType().equals("Cast")) {
            DataType from = p.input(0).type().dataType();
            Node before = p.input(0).producer();
            // Exports without value_info leave the type open: integer positions come from Range-like ops.
            boolean integerSource = from == null && (before == null || java.util.Set.of("Range", "Unsqueeze",
                    "Expand", "Slice", "Gather", "Add", "Reshape", "Identity").contains(before.opType()));
            if (from == DataType.INT64 || from == DataType.INT32 || integerSource) {
                return p;
            }
        }
        for (Value in : p.inputs()) {
            Node found = in == null || AttentionWalk.isConst(in) ? null : positionCast(in, depth + 1);
            if (found != null) {
                return found;
            }
        }
        return null;
    }

    private Value logits(Tensor embedding) {
        for (Value v : g.outputs()) {
            if (v.name().equals("logits")) {
                recognised.put("logits", "graph output '" + v.name() + "'");
                return v;
            }
        }
        for (Value v : g.outputs()) {
            TensorType t = v.type();
            if (t.hasRank() && t.rank() == 3 && embedding != null && t.dims().get(2).isFixed()
                    && t.dims().get(2).value() == embedding.dim(0)) {
                recognised.put("logits", "graph output '" + v.name() + "' (rank 3, last axis the vocabulary)");
                return v;
            }
        }
        unrecognised.put("logits", "no graph output named 'logits' and none of shape [batch, sequence, vocab]; "
                + "outputs are " + g.outputs().stream().map(Value::name).toList());
        return null;
    }

    /** Key/value heads: from repeat_kv's input type or its repeat count; equal to the heads without repeat_kv. */
    private long numKeyValueHeads(long numHeads) {
        if (kvHeads != null) {
            recognised.put("num_key_value_heads", kvHeads + " (from the keys before repeat_kv)");
            return kvHeads;
        }
        if (repeats != null && numHeads > 0 && repeats > 0 && numHeads % repeats == 0) {
            recognised.put("num_key_value_heads", numHeads / repeats + " (heads / repeat_kv's " + repeats
                    + " repeats)");
            return numHeads / repeats;
        }
        return numHeads;
    }

    private long numHeads(long hidden) {
        if (heads != null) {
            recognised.put("num_heads", heads + " (from the key reshape / key type)");
            return heads;
        }
        if (headDim != null && hidden > 0 && hidden % headDim == 0) {
            long h = hidden / headDim;
            recognised.put("num_heads", h + " (hidden " + hidden + " / head width " + headDim
                    + " from the score scale)");
            return h;
        }
        if (headsHint != null && headsHint > 0) {
            recognised.put("num_heads", headsHint + " (from the export's config)");
            return headsHint;
        }
        unrecognised.put("num_heads", "not found in the key reshape, the score scale or the config (reported as -1)");
        return -1;
    }

    /** Tokens, and cached tokens when the graph has a cache, of the causality probe. */
    private static final int PROBE_TOKENS = 3;
    private static final int PROBE_PAST = 2;
    /** A bias at or below this hides a key: exp(-1000) is 0 in float32 (fills are -1e4 up to float's minimum). */
    private static final double MASKED = -1e3;

    /**
     * Verifies that attention is causal: every block's attention bias, evaluated by {@link MaskProbe} for
     * {@value #PROBE_TOKENS} tokens (and after {@value #PROBE_PAST} cached ones when the graph has a cache), hides
     * exactly the keys after each query. A graph whose attention has no mask, or a mask that lets a query see a later
     * key or hides an earlier one (an encoder, a bidirectional or shifted mask), is refused with the report: it
     * cannot be trained as a causal language model. A mask that cannot be evaluated is reported as unverified.
     */
    private void causalMask(List<LayerAnatomy> layers, Value ids, Value mask) {
        if (!unmasked.isEmpty()) {
            unrecognised.put("causal_mask", "no mask is added to the attention scores of blocks " + unmasked);
            throw new OnnxImportException(source + ": attention is not causal: blocks " + unmasked + " apply "
                    + "softmax to the scores without any mask (an encoder or bidirectional model); PET Runtime "
                    + "fine-tunes causal language models", report(layers.size()));
        }
        List<LayerAnatomy> biased = layers.stream().filter(l -> l.attentionBias() != null).toList();
        if (biased.isEmpty()) {
            unrecognised.put("causal_mask", "no attention bias was recognised, so causality was not verified");
            return;
        }
        Value past = g.inputs().stream().filter(v -> PAST.matcher(v.name()).matches()).findFirst().orElse(null);
        List<Integer> pasts = past == null || g.initializer(past.name()) == null ? List.of(0)
                : List.of(0, PROBE_PAST);
        for (int p : pasts) {
            Map<String, Tensor> feeds = new LinkedHashMap<>();
            feeds.put(ids.name(), Tensor.zeros(DataType.INT64, 1, PROBE_TOKENS));
            if (mask != null) {
                long[] ones = new long[p + PROBE_TOKENS];
                java.util.Arrays.fill(ones, 1);
                feeds.put(mask.name(), Tensor.ofLongs(ones, 1, ones.length));
            }
            if (p > 0) {
                for (Value in : g.inputs()) {
                    Tensor empty = g.initializer(in.name());
                    if (PAST.matcher(in.name()).matches() && empty != null) {
                        feeds.put(in.name(), Tensor.zeros(empty.dataType(), 1, empty.dim(1), p, empty.dim(3)));
                    }
                }
            }
            MaskProbe probe = new MaskProbe(g, feeds);
            for (LayerAnatomy l : biased) {
                MaskProbe.Arr bias;
                try {
                    bias = probe.eval(g.requireValue(l.attentionBias()));
                } catch (MaskProbe.Unsupported e) {
                    unrecognised.put("causal_mask", "the attention bias of " + layout.layerPrefix() + l.index()
                            + " could not be evaluated (" + e.getMessage() + "), so causality was not verified");
                    return;
                }
                if (bias.opaque()) {
                    unrecognised.put("causal_mask", "the attention bias of " + layout.layerPrefix() + l.index()
                            + " depends on the activations, so causality was not verified");
                    return;
                }
                String wrong = nonCausal(bias, p);
                if (wrong != null) {
                    unrecognised.put("causal_mask", layout.layerPrefix() + l.index() + ": " + wrong);
                    throw new OnnxImportException(source + ": attention is not causal: in "
                            + layout.layerPrefix() + l.index() + ", with " + PROBE_TOKENS + " tokens after " + p
                            + " cached, " + wrong + " (an encoder, bidirectional or shifted mask); PET Runtime "
                            + "fine-tunes causal language models", report(layers.size()));
                }
            }
        }
        recognised.put("causal_mask", "verified: the attention bias of every block, evaluated for " + PROBE_TOKENS
                + " tokens" + (pasts.size() > 1 ? " (and after " + PROBE_PAST + " cached)" : "")
                + ", lets each query see exactly the keys up to its own position");
    }

    /** Why {@code bias} (broadcast to [.., queries, keys]) is not causal with {@code past} cached keys, or null. */
    private static String nonCausal(MaskProbe.Arr bias, int past) {
        long[] s = bias.shape();
        int r = s.length;
        long rows = r >= 2 ? s[r - 2] : 1;
        long cols = r >= 1 ? s[r - 1] : 1;
        if (rows != PROBE_TOKENS || cols != past + PROBE_TOKENS) {
            return "the bias has shape " + java.util.Arrays.toString(s) + ", not [.., " + PROBE_TOKENS + " queries, "
                    + (past + PROBE_TOKENS) + " keys]: it does not depend on both positions";
        }
        double[] d = bias.data();
        for (int k = 0; k < d.length; k++) {
            long q = k / cols % rows;
            long key = k % cols;
            boolean hidden = d[k] <= MASKED || Double.isNaN(d[k]);
            boolean future = key > past + q;
            if (hidden != future) {
                return "query " + q + " " + (hidden ? "cannot see" : "sees") + " key " + key + " (bias " + d[k] + ")";
            }
        }
        return null;
    }

    /**
     * Past key/value inputs get an empty default, broadcast over the batch: {@code Expand(past, [batch,1,1,1])} is
     * the fed cache unchanged and, without one, an empty [batch, heads, 0, headDim] cache.
     */
    private void pastInputs(Value ids, long numHeads, long width) {
        List<String> found = new ArrayList<>();
        for (Value in : List.copyOf(g.inputs())) {
            Matcher m = PAST.matcher(in.name());
            if (!m.matches()) {
                continue;
            }
            TensorType t = in.type();
            long h = t.hasRank() && t.rank() == 4 && t.dims().get(1).isFixed() ? t.dims().get(1).value() : numHeads;
            long d = t.hasRank() && t.rank() == 4 && t.dims().get(3).isFixed() ? t.dims().get(3).value() : width;
            if (h <= 0 || d <= 0 || in.uses().isEmpty()) {
                notes.add("past input '" + in.name() + "' keeps no default (heads or head width unknown); it must be "
                        + "fed");
                continue;
            }
            DataType dt = t.dataType() == null ? DataType.FLOAT : t.dataType();
            List<Node> readers = List.copyOf(in.uses());
            var b = rewiring.builder();
            String old = b.setScope("/past_default/" + in.name());
            Value batch = b.gather(b.shape(ids), b.ints(0), 0);
            Value past = b.expand(in, b.concat(List.of(batch, b.ints(1, 1, 1)), 0));
            b.setScope(old);
            for (Node r : readers) {
                for (int k = 0; k < r.inputCount(); k++) {
                    if (r.input(k) == in) {
                        r.setInput(k, past);
                    }
                }
            }
            g.setInitializer(in.name(), Tensor.zeros(dt, 1, h, 0, d));
            in.setType(t); // the input keeps its declared [batch, heads, past, headDim] type
            found.add(in.name());
        }
        if (!found.isEmpty()) {
            recognised.put("past_key_values", found.size() + " cache inputs (" + found.get(0) + ", ...) kept, each "
                    + "defaulting to an empty cache");
        }
    }
}
