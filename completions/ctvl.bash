# ctvl bash completion, generated from the Typer app by `make completions`. Do not edit.

_ctvl() {
    local cur prev path="" i w
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        case "$path/$w" in
            "/cache") path="$path/cache" ;;
            "/cache/info") path="$path/info" ;;
            "/cache/ls") path="$path/ls" ;;
            "/cache/merge") path="$path/merge" ;;
            "/cache/verify") path="$path/verify" ;;
            "/embed") path="$path/embed" ;;
            "/finetune") path="$path/finetune" ;;
            "/finetune/clip") path="$path/clip" ;;
            "/finetune/probe") path="$path/probe" ;;
            "/finetune/report") path="$path/report" ;;
            "/finetune/tokenizer") path="$path/tokenizer" ;;
            "/generate-report") path="$path/generate-report" ;;
            "/generate-report/eval") path="$path/eval" ;;
            "/generate-report/generate") path="$path/generate" ;;
            "/generate-report/label") path="$path/label" ;;
            "/models") path="$path/models" ;;
            "/models/info") path="$path/info" ;;
            "/models/list") path="$path/list" ;;
            "/models/pull") path="$path/pull" ;;
            "/phantom") path="$path/phantom" ;;
            "/retrieve") path="$path/retrieve" ;;
            "/retrieve/build") path="$path/build" ;;
            "/retrieve/eval") path="$path/eval" ;;
            "/retrieve/query") path="$path/query" ;;
            "/segment-organs") path="$path/segment-organs" ;;
            "/zeroshot") path="$path/zeroshot" ;;
            "/zeroshot/eval") path="$path/eval" ;;
            "/zeroshot/score") path="$path/score" ;;
        esac
    done
    local words="" values="" files=0
    case "$path" in
        "") words="cache embed finetune generate-report models phantom retrieve segment-organs zeroshot --version --help"
            ;;
        "/cache") words="info ls merge verify --help"
            ;;
        "/cache/info") words="--format -f --help"
            case "$prev" in
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/cache/ls") words="--model -m --kind --format -f --help"
            case "$prev" in
                --model) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                -m) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                --kind) files=1 ;;
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/cache/merge") words="--format -f --help"
            case "$prev" in
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/cache/verify") words="--sources --format -f --help"
            case "$prev" in
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/embed") words="--cache -c --model -m --reports --weights --batch-size -b --workers -j --device --shard --regions --format -f --help"
            case "$prev" in
                --cache) files=1 ;;
                -c) files=1 ;;
                --model) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                -m) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                --reports) files=1 ;;
                --weights) files=1 ;;
                --batch-size) files=1 ;;
                -b) files=1 ;;
                --workers) files=1 ;;
                -j) files=1 ;;
                --device) files=1 ;;
                --shard) files=1 ;;
                --regions) files=1 ;;
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/finetune") words="clip probe report tokenizer --help"
            ;;
        "/finetune/clip") words="--out -o --pairs --model -m --weights --scratch --tokenizer --arch-param --epochs --batch-size -b --accum --lr --weight-decay --grad-clip --warmup --val-pairs --val-labels --text-aug --no-text-aug --text-aug-whole --labels --label-weight --label-input --prompt-weight --masks --mask-weight --mask-stage --mask-pos-weight --mask-labels --clip-weight --freeze --lr-mult --aug-shift --aug-rotate --aug-scale --seed --save-every --max-steps --image-root --input-cache --workers -j --device --amp --no-amp --resume --overwrite --format -f --help"
            case "$prev" in
                --out) files=1 ;;
                -o) files=1 ;;
                --pairs) files=1 ;;
                --model) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                -m) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                --weights) files=1 ;;
                --tokenizer) files=1 ;;
                --arch-param) files=1 ;;
                --epochs) files=1 ;;
                --batch-size) files=1 ;;
                -b) files=1 ;;
                --accum) files=1 ;;
                --lr) files=1 ;;
                --weight-decay) files=1 ;;
                --grad-clip) files=1 ;;
                --warmup) files=1 ;;
                --val-pairs) files=1 ;;
                --val-labels) files=1 ;;
                --text-aug-whole) files=1 ;;
                --labels) files=1 ;;
                --label-weight) files=1 ;;
                --label-input) files=1 ;;
                --prompt-weight) files=1 ;;
                --masks) files=1 ;;
                --mask-weight) files=1 ;;
                --mask-stage) files=1 ;;
                --mask-pos-weight) files=1 ;;
                --mask-labels) files=1 ;;
                --clip-weight) files=1 ;;
                --freeze) files=1 ;;
                --lr-mult) files=1 ;;
                --aug-shift) files=1 ;;
                --aug-rotate) files=1 ;;
                --aug-scale) files=1 ;;
                --seed) files=1 ;;
                --save-every) files=1 ;;
                --max-steps) files=1 ;;
                --image-root) files=1 ;;
                --input-cache) files=1 ;;
                --workers) files=1 ;;
                -j) files=1 ;;
                --device) files=1 ;;
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/finetune/probe") words="--labels --cache -c --out -o --model -m --weights --val-fraction --steps --lr --weight-decay --seed --format -f --help"
            case "$prev" in
                --labels) files=1 ;;
                --cache) files=1 ;;
                -c) files=1 ;;
                --out) files=1 ;;
                -o) files=1 ;;
                --model) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                -m) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                --weights) files=1 ;;
                --val-fraction) files=1 ;;
                --steps) files=1 ;;
                --lr) files=1 ;;
                --weight-decay) files=1 ;;
                --seed) files=1 ;;
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/finetune/report") words="--out -o --pairs --llm --tokenizer --model -m --weights --projector --queries --projector-heads --pool-kernel --llm-train --lora-r --lora-alpha --lora-targets --max-len --epochs --batch-size -b --accum --lr --llm-lr --weight-decay --grad-clip --warmup --val-pairs --val-max --seed --save-every --max-steps --image-root --input-cache --workers -j --device --amp --no-amp --resume --overwrite --format -f --help"
            case "$prev" in
                --out) files=1 ;;
                -o) files=1 ;;
                --pairs) files=1 ;;
                --llm) files=1 ;;
                --tokenizer) files=1 ;;
                --model) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                -m) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                --weights) files=1 ;;
                --projector) files=1 ;;
                --queries) files=1 ;;
                --projector-heads) files=1 ;;
                --pool-kernel) files=1 ;;
                --llm-train) files=1 ;;
                --lora-r) files=1 ;;
                --lora-alpha) files=1 ;;
                --lora-targets) files=1 ;;
                --max-len) files=1 ;;
                --epochs) files=1 ;;
                --batch-size) files=1 ;;
                -b) files=1 ;;
                --accum) files=1 ;;
                --lr) files=1 ;;
                --llm-lr) files=1 ;;
                --weight-decay) files=1 ;;
                --grad-clip) files=1 ;;
                --warmup) files=1 ;;
                --val-pairs) files=1 ;;
                --val-max) files=1 ;;
                --seed) files=1 ;;
                --save-every) files=1 ;;
                --max-steps) files=1 ;;
                --image-root) files=1 ;;
                --input-cache) files=1 ;;
                --workers) files=1 ;;
                -j) files=1 ;;
                --device) files=1 ;;
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/finetune/tokenizer") words="--texts --out -o --vocab-size --max-length --cased --format -f --help"
            case "$prev" in
                --texts) files=1 ;;
                --out) files=1 ;;
                -o) files=1 ;;
                --vocab-size) files=1 ;;
                --max-length) files=1 ;;
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/generate-report") words="eval generate label --help"
            ;;
        "/generate-report/eval") words="--pred --truth --per-finding --format -f --help"
            case "$prev" in
                --pred) files=1 ;;
                --truth) files=1 ;;
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/generate-report/generate") words="--method --model -m --index -i --exclude-self --threshold --cache -c --decoding --beams --temperature --top-p --repetition-penalty --max-new-tokens --seed --batch-size -b --workers -j --device --format -f --help"
            case "$prev" in
                --method) files=1 ;;
                --model) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                -m) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                --index) files=1 ;;
                -i) files=1 ;;
                --threshold) files=1 ;;
                --cache) files=1 ;;
                -c) files=1 ;;
                --decoding) files=1 ;;
                --beams) files=1 ;;
                --temperature) files=1 ;;
                --top-p) files=1 ;;
                --repetition-penalty) files=1 ;;
                --max-new-tokens) files=1 ;;
                --seed) files=1 ;;
                --batch-size) files=1 ;;
                -b) files=1 ;;
                --workers) files=1 ;;
                -j) files=1 ;;
                --device) files=1 ;;
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/generate-report/label") words="--uncertain --evidence --format -f --help"
            case "$prev" in
                --uncertain) files=1 ;;
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/models") words="info list pull --help"
            ;;
        "/models/info") words="--format -f --help"
            case "$prev" in
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/models/list") words="--format -f --help"
            case "$prev" in
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/models/pull") words="--token --force --format -f --help"
            case "$prev" in
                --token) files=1 ;;
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/phantom") words="-n --n --seed -s --findings --finding-rate --resolution -r --workers -j --start --masks --format -f --help"
            case "$prev" in
                -n) files=1 ;;
                --n) files=1 ;;
                --seed) files=1 ;;
                -s) files=1 ;;
                --findings) files=1 ;;
                --finding-rate) files=1 ;;
                --resolution) files=1 ;;
                -r) files=1 ;;
                --workers) files=1 ;;
                -j) files=1 ;;
                --start) files=1 ;;
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/retrieve") words="build eval query --help"
            ;;
        "/retrieve/build") words="--cache -c --index -i --model -m --kind --add --overwrite --gpu --no-gpu --memory-budget --region --reports --format -f --help"
            case "$prev" in
                --cache) files=1 ;;
                -c) files=1 ;;
                --index) files=1 ;;
                -i) files=1 ;;
                --model) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                -m) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                --kind) files=1 ;;
                --memory-budget) files=1 ;;
                --region) files=1 ;;
                --reports) files=1 ;;
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/retrieve/eval") words="--cache -c --labels --reports --model -m --map-k --recall-k --ctclip-compat --format -f --help"
            case "$prev" in
                --cache) files=1 ;;
                -c) files=1 ;;
                --labels) files=1 ;;
                --reports) files=1 ;;
                --model) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                -m) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                --map-k) files=1 ;;
                --recall-k) files=1 ;;
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/retrieve/query") words="--index -i --image --text --reports -k --k --exclude-self --model -m --cache --device --regions --format -f --help"
            case "$prev" in
                --index) files=1 ;;
                -i) files=1 ;;
                --image) files=1 ;;
                --text) files=1 ;;
                --reports) files=1 ;;
                -k) files=1 ;;
                --k) files=1 ;;
                --model) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                -m) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                --cache) files=1 ;;
                --device) files=1 ;;
                --regions) files=1 ;;
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/segment-organs") words="--out -o --backend --organs --split --preview --fast --format -f --help"
            case "$prev" in
                --out) files=1 ;;
                -o) files=1 ;;
                --backend) files=1 ;;
                --organs) files=1 ;;
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/zeroshot") words="eval score --help"
            ;;
        "/zeroshot/eval") words="--pred --truth --bootstrap --seed --thresholds-out --format -f --help"
            case "$prev" in
                --pred) files=1 ;;
                --truth) files=1 ;;
                --bootstrap) files=1 ;;
                --seed) files=1 ;;
                --thresholds-out) files=1 ;;
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
        "/zeroshot/score") words="--labels -l --model -m --cache -c --templates -t --head --threshold --weights --batch-size -b --workers -j --device --region --regions --format -f --help"
            case "$prev" in
                --labels) files=1 ;;
                -l) files=1 ;;
                --model) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                -m) values="ct-clip ct-clip.classfine ct-clip.vocabfine ct-resnet18-clip ctvl-phantom ctvl-tiny-test merlin merlin-i3d.astra" ;;
                --cache) files=1 ;;
                -c) files=1 ;;
                --templates) files=1 ;;
                -t) files=1 ;;
                --head) files=1 ;;
                --threshold) files=1 ;;
                --weights) files=1 ;;
                --batch-size) files=1 ;;
                -b) files=1 ;;
                --workers) files=1 ;;
                -j) files=1 ;;
                --device) files=1 ;;
                --region) files=1 ;;
                --regions) files=1 ;;
                --format) values="human json jsonl csv" ;;
                -f) values="human json jsonl csv" ;;
            esac
            ;;
    esac
    if [[ -n "$values" ]]; then COMPREPLY=($(compgen -W "$values" -- "$cur")); return 0; fi
    if [[ $files -eq 1 ]]; then COMPREPLY=($(compgen -f -- "$cur")); return 0; fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
    if [[ ${#COMPREPLY[@]} -eq 0 && "$cur" != -* ]]; then COMPREPLY=($(compgen -f -- "$cur")); fi
    return 0
}
complete -o default -o filenames -F _ctvl ctvl
