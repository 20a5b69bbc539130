// A header count («Чаты», «Обращения») that changes through set() (a run_method message): an element
// update would make NiceGUI redraw the whole page from its root in every tab, at every new request.
export default {
  props: { count: Number, color: String },
  data() {
    return { shown: this.count || 0 };
  },
  watch: {
    count(value) { this.shown = value || 0; },
  },
  methods: {
    set(value) { this.shown = value; },
  },
  template: `<q-badge v-if="shown > 0" rounded :color="color" v-text="shown"></q-badge>`,
};
